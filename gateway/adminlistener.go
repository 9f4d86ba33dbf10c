package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/gateway/admin"
	"github.com/valyala/fasthttp"
)

// adminListener is the admin listener: /metrics, /healthz and /readyz
// always, and the admin REST API (behind its token) on every other path.
type adminListener struct {
	addr    string
	m       *Metrics
	ready   func() error
	log     *slog.Logger
	srv     *fasthttp.Server
	ln      net.Listener
	handler atomic.Pointer[fasthttp.RequestHandler]
	done    chan struct{}
	// died is told when Serve returns while the listener is not being
	// stopped (the socket failed): the App then ends the process.
	died     func(error)
	stopping atomic.Bool
	tls      *certReloader // nil: plain HTTP
}

// start listens on addr and serves; api is the admin REST API (nil: none,
// its routes answer 404).
func (l *adminListener) start(api *admin.Handler) error {
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return err
	}
	l.ln = ln
	maxBody, errHandler := 32<<20, func(ctx *fasthttp.RequestCtx, err error) {
		if errors.Is(err, fasthttp.ErrBodyTooLarge) {
			writeError(ctx, ErrBodyTooLarge, 0)
			return
		}
		writeError(ctx, errors.Join(ErrInvalidJSON, err), 0)
	}
	if api != nil {
		l.setHandler(api.ServeFastHTTP)
		maxBody, errHandler = api.MaxRequestBodySize(), api.WriteServerError
	}
	l.srv = &fasthttp.Server{
		Name:                         "sluice-admin",
		Handler:                      l.serve,
		MaxRequestBodySize:           maxBody,
		DisablePreParseMultipartForm: true,
		ReadTimeout:                  30 * time.Second,
		WriteTimeout:                 30 * time.Second,
		IdleTimeout:                  60 * time.Second,
		CloseOnShutdown:              true,
		ErrorHandler:                 errHandler,
		Logger:                       slog.NewLogLogger(l.log.Handler(), slog.LevelWarn),
	}
	l.done = make(chan struct{})
	serveLn := ln
	if l.tls != nil {
		serveLn = l.tls.listener(ln)
	}
	go func() {
		defer close(l.done)
		err := l.srv.Serve(serveLn)
		if !l.stopping.Load() && l.died != nil {
			l.died(listenerDied("admin", ln.Addr(), err))
		}
	}()
	return nil
}

// listenerDied is the error of a listener whose Serve returned while
// running (nil: it was closed from under it).
func listenerDied(what string, addr net.Addr, err error) error {
	if err == nil {
		err = errors.New("the listening socket was closed")
	}
	return fmt.Errorf("%s listener %s stopped accepting connections: %w", what, addr, err)
}

// stop shuts the listener down and waits for Serve to return.
func (l *adminListener) stop(ctx context.Context) error {
	l.stopping.Store(true)
	err := l.srv.ShutdownWithContext(ctx)
	<-l.done
	return err
}

// Addr returns the bound address ("" before start).
func (l *adminListener) Addr() string {
	if l.ln == nil {
		return ""
	}
	return l.ln.Addr().String()
}

// setHandler sets the handler of every path besides /healthz, /readyz and
// /metrics; nil restores the default (404 JSON).
func (l *adminListener) setHandler(h fasthttp.RequestHandler) {
	if h == nil {
		l.handler.Store(nil)
		return
	}
	l.handler.Store(&h)
}

func (l *adminListener) serve(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/metrics":
		ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
		l.m.WritePrometheus(ctx)
		return
	case "/healthz":
		writeJSON(ctx, fasthttp.StatusOK, `{"status":"ok"}`)
		return
	case "/readyz":
		readyz(ctx, l.ready)
		return
	}
	if h := l.handler.Load(); h != nil {
		(*h)(ctx)
		return
	}
	admin.NotEnabled(ctx)
}
