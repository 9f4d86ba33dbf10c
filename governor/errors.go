package governor

import (
	"errors"
	"fmt"
)

// ErrInvalidConfig is returned (wrapped in a *ConfigError) when a Hysteresis,
// BudgetConfig or Config cannot work as given. Test with errors.Is.
var ErrInvalidConfig = errors.New("governor: invalid configuration")

// ErrBaselineTooLarge is returned (wrapped in a *BaselineError) by
// Baseline.Check when the fixed memory leaves too little of the memory
// limit to traffic. Test with errors.Is.
var ErrBaselineTooLarge = errors.New("governor: memory baseline leaves too little of the limit to traffic")

// ConfigError names the field that failed validation and why. It unwraps to
// ErrInvalidConfig.
type ConfigError struct {
	// Field is the offending field, qualified by its struct
	// (e.g. "Hysteresis.PauseAbove", "BudgetConfig.Min").
	Field string
	// Value is the rejected value as given.
	Value any
	// Reason says what the field must be instead.
	Reason string
}

// Error implements error.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("governor: %s = %v: %s", e.Field, e.Value, e.Reason)
}

// Unwrap returns ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

func configErr(field string, value any, reason string) error {
	return &ConfigError{Field: field, Value: value, Reason: reason}
}
