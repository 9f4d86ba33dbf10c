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
)

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
	// DryRunTimeout bounds one dry-run (all its guest calls). Default 10s.
	DryRunTimeout time.Duration
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
	return errors.Join(errs...)
}
