package admin

import "net"

type netConn = net.Conn

// quietLogger silences fasthttp's connection-error log in tests.
type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}
