//go:build race

package awareness

// Under the race detector sync.Pool drops a share of what is put back, so encoding/json's
// validator allocates a fresh scanner for some states: a cost per entry, so still per input
// byte, that a normal build does not have.
const racePerByte = 64
