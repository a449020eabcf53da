package pki

import (
	"context"
	"log/slog"
	"net"

	"google.golang.org/grpc/credentials"
)

// LoggedTLS wraps a server's TLS transport credentials so that every
// refused handshake (a plaintext client, a certificate of another CA, an
// expired or oversized one) is logged once, with the peer's address: the
// client only sees its connection fail.
func LoggedTLS(creds credentials.TransportCredentials, log *slog.Logger) credentials.TransportCredentials {
	return loggedTLS{TransportCredentials: creds, log: log}
}

type loggedTLS struct {
	credentials.TransportCredentials
	log *slog.Logger
}

func (l loggedTLS) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	c, info, err := l.TransportCredentials.ServerHandshake(conn)
	if err != nil {
		l.log.LogAttrs(context.Background(), slog.LevelInfo, "TLS handshake refused", slog.String("peer", conn.RemoteAddr().String()), slog.String("err", err.Error()))
	}
	return c, info, err
}

func (l loggedTLS) Clone() credentials.TransportCredentials {
	return loggedTLS{TransportCredentials: l.TransportCredentials.Clone(), log: l.log}
}
