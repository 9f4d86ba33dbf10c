package admin

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of Config.
const (
	// DefaultMaxUpload is the default cap of an uploaded module: 16 MiB.
	DefaultMaxUpload = 16 << 20
	// DefaultMaxSample is the default cap of a dry-run request body: 1 MiB.
	DefaultMaxSample = 1 << 20
	// DefaultMaxSampleEvents is the default cap of events in one dry-run.
	DefaultMaxSampleEvents = 1000
	// DefaultDryRunTimeout bounds one dry-run request.
	DefaultDryRunTimeout = 10 * time.Second
	// DefaultHistoryInterval is the default time between two samples of
	// GET /admin/history: 1 s.
	DefaultHistoryInterval = time.Second
	// DefaultHistoryLength is how far back GET /admin/history goes by
	// default: 15 minutes.
	DefaultHistoryLength = 15 * time.Minute
)

// maxDryRuns is how many dry runs run at once; more wait (within their
// timeout). Each starts its own instance of every transform of its chain.
const maxDryRuns = 1

// maxHistorySamples caps HistoryLength / HistoryInterval.
const maxHistorySamples = 100_000

// Config configures the admin API. It is immutable once passed to New.
type Config struct {
	// Token is the bearer token every route requires
	// (Authorization: Bearer <Token>). Required; compared in constant time.
	Token string
	// MaxUpload caps a module upload in bytes (PUT /admin/transforms/{name}).
	// A larger body is answered 413. Default 16 MiB. The listener serving
	// the handler must accept bodies at least this large (see
	// Handler.MaxRequestBodySize) and answer its own body-too-large error
	// with 413 (see WriteServerError).
	MaxUpload int64
	// MaxSample caps a dry-run request body in bytes (POST .../test).
	// A larger body is answered 413. Default 1 MiB.
	MaxSample int64
	// MaxSampleEvents caps the number of events in one dry-run; more is 400.
	// Default 1000.
	MaxSampleEvents int
	// DryRunTimeout bounds one dry-run (all its guest calls), the wait for
	// another dry run to finish included (one runs at a time). Default 10s.
	DryRunTimeout time.Duration
	// HistoryInterval is the time between two samples of the history
	// (GET /admin/history, the console's charts). Default 1 s; at least
	// 10 ms.
	HistoryInterval time.Duration
	// HistoryLength is how far back the history goes: it keeps
	// HistoryLength / HistoryInterval samples (at most 100,000), the
	// oldest dropped first. Default 15 minutes.
	HistoryLength time.Duration
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.MaxUpload == 0 {
		c.MaxUpload = DefaultMaxUpload
	}
	if c.MaxSample == 0 {
		c.MaxSample = DefaultMaxSample
	}
	if c.MaxSampleEvents == 0 {
		c.MaxSampleEvents = DefaultMaxSampleEvents
	}
	if c.DryRunTimeout == 0 {
		c.DryRunTimeout = DefaultDryRunTimeout
	}
	if c.HistoryInterval == 0 {
		c.HistoryInterval = DefaultHistoryInterval
	}
	if c.HistoryLength == 0 {
		c.HistoryLength = DefaultHistoryLength
	}
	return c
}

// Validate reports a configuration the API cannot run with. Zero values
// mean the defaults and are valid, except Token, which is required.
func (c Config) Validate() error {
	var errs []error
	if c.Token == "" {
		errs = append(errs, errors.New("admin: Token is required (the admin API never runs unauthenticated)"))
	}
	if c.MaxUpload < 0 {
		errs = append(errs, fmt.Errorf("admin: MaxUpload %d must be ≥ 0 (0 = %d)", c.MaxUpload, DefaultMaxUpload))
	}
	if c.MaxSample < 0 {
		errs = append(errs, fmt.Errorf("admin: MaxSample %d must be ≥ 0 (0 = %d)", c.MaxSample, DefaultMaxSample))
	}
	if c.MaxSampleEvents < 0 {
		errs = append(errs, fmt.Errorf("admin: MaxSampleEvents %d must be ≥ 0 (0 = %d)", c.MaxSampleEvents, DefaultMaxSampleEvents))
	}
	if c.DryRunTimeout < 0 {
		errs = append(errs, fmt.Errorf("admin: DryRunTimeout %v must be ≥ 0 (0 = %v)", c.DryRunTimeout, DefaultDryRunTimeout))
	}
	if c.HistoryInterval != 0 && c.HistoryInterval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("admin: HistoryInterval %v must be ≥ 10ms (0 = %v)", c.HistoryInterval, DefaultHistoryInterval))
	}
	if c.HistoryLength < 0 {
		errs = append(errs, fmt.Errorf("admin: HistoryLength %v must be ≥ 0 (0 = %v)", c.HistoryLength, DefaultHistoryLength))
	}
	if d := c.withDefaults(); d.HistoryInterval > 0 && d.HistoryLength/d.HistoryInterval > maxHistorySamples {
		errs = append(errs, fmt.Errorf("admin: HistoryLength %v / HistoryInterval %v is over %d samples", d.HistoryLength, d.HistoryInterval, maxHistorySamples))
	}
	return errors.Join(errs...)
}
