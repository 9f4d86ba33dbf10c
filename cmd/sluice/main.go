// Command sluice is the WebAssembly-scripted edge ingest gateway.
//
//	sluice run [flags]      start the gateway (sluice run --help for the flags)
//	sluice run --dev        everything on one machine, with an embedded Kafka broker
//	sluice load [flags]     the load generator
//	sluice version          print the version
//
// main reads: start in order → serve (SIGHUP reloads the TLS certificates)
// → wait for SIGTERM/SIGINT (or a part that died: exit 1) → stop in
// reverse, each step logged with its duration (see gateway.App). A second
// SIGTERM/SIGINT during the stop exits at once with 128 + the signal's
// number.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/gateway"
	"github.com/sluicehq/sluice/internal/load"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func main() {
	os.Exit(doMain(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `sluice — a WebAssembly-scripted edge ingest gateway

Usage:
  sluice run [flags]     start the gateway (sluice run -h lists the flags)
  sluice run --dev       start everything locally with an embedded Kafka broker
  sluice load [flags]    generate load against an ingest endpoint
  sluice transform init  scaffold a transform (Go or Rust) with a test and a README
  sluice version         print the version
`

// doMain runs sluice with args (without the program name) and returns the
// process exit code, so that it is testable.
func doMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		ctx, again, stop := shutdownSignals()
		defer stop()
		return run(ctx, again, args[1:], stdout, stderr)
	case "transform":
		return transformCmd(args[1:], stdout, stderr)
	case "load":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		return load.Main(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "sluice %s %s %s/%s\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "sluice: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// shutdownSignals returns a context cancelled by the first SIGTERM or
// SIGINT and a channel that receives the signals after it (one is kept
// until read); stop releases the signals.
func shutdownSignals() (ctx context.Context, again <-chan os.Signal, stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	ctx, cancel := context.WithCancel(context.Background())
	next := make(chan os.Signal, 1)
	done := make(chan struct{})
	go func() {
		select {
		case <-ch:
			cancel()
		case <-done:
			return
		}
		for {
			select {
			case s := <-ch:
				select {
				case next <- s:
				default:
				}
			case <-done:
				return
			}
		}
	}()
	return ctx, next, func() {
		signal.Stop(ch)
		close(done)
		cancel()
	}
}

// run is `sluice run`: start in order, serve until ctx is done (SIGTERM,
// SIGINT) or a part of the App dies (exit 1), reloading on SIGHUP, stop in
// reverse. A signal on again during the stop exits at once, the drain
// unfinished.
func run(ctx context.Context, again <-chan os.Signal, args []string, stdout, stderr io.Writer) int {
	// SIGHUP reloads (App.Reload); caught from the start, so an early one
	// does not end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	cfg, err := gateway.LoadConfig(args, nil, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "sluice: %v\n", err)
		return 2
	}
	logger := newLogger(cfg, stderr)
	app, err := gateway.New(cfg, logger, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "sluice: %v\n", err)
		return 2
	}
	t := time.Now()
	if err := app.Start(ctx); err != nil {
		logger.Error("sluice failed to start", "err", err)
		return 1
	}
	logger.Info("sluice started", "version", versionString(), "duration", time.Since(t))
	code := 0
	for wait := true; wait; {
		select {
		case <-ctx.Done():
			logger.Info("signal received; shutting down (a second signal exits at once)", "deadline", cfg.ShutdownTimeout)
			wait = false
		case err := <-app.Failed():
			logger.Error("shutting down after a failure", "err", err, "deadline", cfg.ShutdownTimeout)
			code = 1
			wait = false
		case <-hup:
			logger.Info("SIGHUP: reloading the TLS certificates")
			_ = app.Reload() // failures are logged; the previous certificates stay
		}
	}
	t = time.Now()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout+10*time.Second)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- app.Stop(sctx) }()
	select {
	case err := <-stopped:
		if err != nil {
			logger.Error("sluice stopped with errors", "err", err, "duration", time.Since(t))
			return 1
		}
	case s := <-again:
		logger.Error("second signal: exiting at once; the drain is cut short, requests still waiting get no answer and may have to be retried",
			"signal", s.String(), "after", time.Since(t))
		if sig, ok := s.(syscall.Signal); ok {
			return 128 + int(sig)
		}
		return 1
	}
	logger.Info("sluice stopped", "duration", time.Since(t), "exit_code", code)
	return code
}

func newLogger(cfg gateway.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(strings.ToLower(cfg.LogLevel)))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
