package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// acquireLock takes an exclusive flock(2) on path (created if missing),
// waiting for it if another process holds it, and returns its release.
// flock(1) takes the same kind of lock, so a benchmark run under
// `flock FILE …` and one with -lock FILE exclude each other. An empty path
// takes no lock.
func acquireLock(path string, stderr io.Writer) (release func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		fmt.Fprintf(stderr, "benchrun: waiting for the lock on %s (another measurement is running) …\n", path)
		t := time.Now()
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err == nil {
			fmt.Fprintf(stderr, "benchrun: got the lock after %v\n", time.Since(t).Round(time.Second))
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
