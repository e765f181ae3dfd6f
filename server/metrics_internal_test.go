package server

import (
	"fmt"
	"io"
	"testing"
)

// Hand-written text-format writers still served during the migration are parsed into families.
func TestLegacyMetricWritersParse(t *testing.T) {
	fams, err := gatherText([]func(io.Writer){
		func(b io.Writer) {
			fmt.Fprint(b, "# HELP ysync_x_total X.\n# TYPE ysync_x_total counter\nysync_x_total 3\n")
		},
		func(b io.Writer) {
			fmt.Fprint(b, "# HELP ysync_y Y.\n# TYPE ysync_y gauge\nysync_y{kind=\"a\"} 1\nysync_y{kind=\"b\"} 2\n")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(fams) != 2 || fams[0].GetName() != "ysync_x_total" || fams[0].Metric[0].GetCounter().GetValue() != 3 ||
		len(fams[1].Metric) != 2 {
		t.Fatalf("families %v", fams)
	}
	if _, err := gatherText([]func(io.Writer){func(b io.Writer) { fmt.Fprint(b, "not { metrics\n") }}); err == nil {
		t.Error("malformed legacy output accepted")
	}
}
