package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cluster is a throwaway PostgreSQL cluster this test starts and stops itself (as scripts/pg.sh
// does: as the postgres user when running as root).
type cluster struct {
	bin, dir string
	port     int
	asOwner  func(name string, args ...string) *exec.Cmd
}

func pgBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d
		}
	}
	return ""
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	bin := pgBinDir()
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin)")
		}
		t.Skip("no PostgreSQL server binaries")
	}
	c := &cluster{bin: bin}
	c.asOwner = func(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }
	dir, err := os.MkdirTemp("", "ysync-outage-pg")
	if err != nil {
		t.Fatal(err)
	}
	c.dir = dir
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Getuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("running as root without a postgres user")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		c.asOwner = func(name string, args ...string) *exec.Cmd {
			return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
		}
	}
	if out, err := c.asOwner(filepath.Join(bin, "initdb"), "-D", c.data(), "-U", "postgres", "--auth=trust", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port, _ := strconv.Atoi(strings.TrimPrefix(freeAddr(t), "127.0.0.1:"))
	c.port = port
	c.start(t)
	t.Cleanup(func() {
		_ = c.asOwner(filepath.Join(bin, "pg_ctl"), "-D", c.data(), "-m", "immediate", "-w", "stop").Run()
	})
	if out, err := c.asOwner(filepath.Join(bin, "psql"), "-X", "-q", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "postgres", "-d", "postgres", "-c", "CREATE DATABASE outage").CombinedOutput(); err != nil {
		t.Fatalf("create database: %v\n%s", err, out)
	}
	return c
}

func (c *cluster) data() string { return filepath.Join(c.dir, "data") }

func (c *cluster) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/outage?sslmode=disable", c.port)
}

func (c *cluster) start(t *testing.T) {
	t.Helper()
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c fsync=off", c.port, c.dir)
	if out, err := c.asOwner(filepath.Join(c.bin, "pg_ctl"), "-D", c.data(), "-l", filepath.Join(c.dir, "log"), "-w", "-t", "60", "-o", opts, "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
}

func (c *cluster) stop(t *testing.T) {
	t.Helper()
	if out, err := c.asOwner(filepath.Join(c.bin, "pg_ctl"), "-D", c.data(), "-m", "fast", "-w", "stop").CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

func readyz(base string) int {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(base + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitReady(t *testing.T, base string, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for readyz(base) != want {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never answered %d", want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// PostgreSQL goes away in the middle of a session: the server keeps serving the editors from
// memory, /readyz says not ready, appends are retried; once the database is back everything is
// written, and a restart serves exactly what the editors converged on.
func TestPostgresOutage(t *testing.T) {
	pg := newCluster(t)
	bin := buildBinary(t)
	addr := freeAddr(t)
	doc := "outage/doc"
	p := startServeAt(t, bin, pg.url(), addr)
	base := httpBase(p)
	waitReady(t, base, 200)
	ed := startEditors(t, p.base, doc, 2, "")
	time.Sleep(time.Second)

	pg.stop(t)
	ackedAtStop := ed.ackedCount()
	waitReady(t, base, 503)
	time.Sleep(3 * time.Second) // the editors keep editing, and see each other's edits
	if gained := ed.ackedCount() - ackedAtStop; gained > 20 {
		// A few acks may be in flight when the database stops; nothing new is acknowledged.
		t.Errorf("%d updates acknowledged while the database was down", gained)
	}
	pg.start(t)
	waitReady(t, base, 200)
	time.Sleep(time.Second)

	items := ed.stop(t)
	acked := ed.ackedLabels()
	checkAll(t, "converged clients", acked, items)
	waitStored(t, base, doc, "")
	p.kill(t)
	p = startServeAt(t, bin, pg.url(), addr)
	got := readStrings(t, p.base, doc)
	checkAll(t, "after the outage and a restart", items, got)
	t.Logf("%d items, %d acked before/after the outage; all stored", len(items), len(acked))
}
