package server_test

import "github.com/ysync/ysync/internal/servertest"

// The helpers every server test uses live in internal/servertest, shared with workflowapi's
// tests; these names keep the tests short.
var (
	start      = servertest.Start
	startMem   = servertest.StartMem
	dial       = servertest.Dial
	dialToken  = servertest.DialToken
	syncOnce   = servertest.SyncOnce
	token      = servertest.Token
	jwtAuth    = servertest.JWTAuth
	testSecret = servertest.Secret
)
