package gateway

import "errors"

// errSourceClosed stands for engine.ErrSourceClosed until the driver lands.
var errSourceClosed = errors.New("source closed")
