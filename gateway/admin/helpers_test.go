package admin

import "net"

type netConn = net.Conn
