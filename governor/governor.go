package governor

import (
	"math"
	"time"
)

// DefaultHeapRefresh is how long the heap source caches its reading when
// Config.HeapRefresh is 0.
const DefaultHeapRefresh = 100 * time.Millisecond

// Config configures a Governor. It is flat and immutable once passed to New.
type Config struct {
	// MemoryLimit is the MemoryGuard's limit on in-flight bytes. Required,
	// > 0. At HardAt·MemoryLimit the guard reports HARD pressure: the gate
	// holds and the budget shrinks at once.
	MemoryLimit int64
	// HardAt is the fraction of a limit (guard and heap) at which a source
	// reports HARD, in (0, 1]. Default 0.9.
	HardAt float64
	// HeapLimit is the Go heap source's limit in bytes. 0: GOMEMLIMIT if set,
	// else the cgroup memory limit, else no heap pressure. -1: no heap
	// source at all.
	HeapLimit int64
	// HeapRefresh is how long a heap reading is cached. Default 100ms.
	HeapRefresh time.Duration
	// ExtraMemory, when set, returns memory the process holds outside the
	// Go heap, in bytes (e.g. WASM guests' linear memory). The heap source
	// adds it to each reading, so it counts against HeapLimit; it is called
	// once per HeapRefresh, must be cheap and safe for concurrent use.
	// Default nil: the Go heap alone. Unused when HeapLimit is -1.
	ExtraMemory func() int64
	// HostMemory, when set, reports a WASM host's memory: its fixed part
	// (compiled code, instance pools at their reserved size) joins the
	// baseline, its off-heap part the reading (see HostMemory). Called once
	// per HeapRefresh; must be cheap and safe for concurrent use. Default
	// nil. Unused when HeapLimit is -1.
	HostMemory func() HostMemory
	// ManageGoMemoryLimit makes the heap source keep GOMEMLIMIT at the heap
	// limit less the memory outside the Go runtime (see
	// HeapSource.ManageGoMemoryLimit). Default false: GOMEMLIMIT is left
	// alone. Needs a heap limit.
	ManageGoMemoryLimit bool
	// Hysteresis is the latch's thresholds. Zero value: DefaultHysteresis().
	Hysteresis Hysteresis
	// Budget configures the AIMD byte budget; zero fields take their
	// defaults (see BudgetConfig).
	Budget BudgetConfig
	// Sources are extra pressure sources (queue fill, sink health), read
	// after the guard and the heap.
	Sources []Source
	// Actuators are notified on gate edges.
	Actuators []Actuator
}

// withDefaults returns c with its zero fields filled.
func (c Config) withDefaults() Config {
	if c.HardAt == 0 {
		c.HardAt = DefaultHardAt
	}
	if c.HeapRefresh == 0 {
		c.HeapRefresh = DefaultHeapRefresh
	}
	if c.Hysteresis == (Hysteresis{}) {
		c.Hysteresis = DefaultHysteresis()
	}
	return c
}

// Validate reports a configuration New cannot build, naming the field.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.MemoryLimit <= 0 {
		return configErr("Config.MemoryLimit", c.MemoryLimit, "must be > 0 bytes")
	}
	if !(c.HardAt > 0 && c.HardAt <= 1) || math.IsNaN(c.HardAt) {
		return configErr("Config.HardAt", c.HardAt, "must be in (0, 1]")
	}
	if c.HeapLimit < -1 {
		return configErr("Config.HeapLimit", c.HeapLimit, "must be ≥ 0 bytes, or -1 to disable the heap source")
	}
	if c.HeapRefresh < 0 {
		return configErr("Config.HeapRefresh", c.HeapRefresh, "must not be negative")
	}
	if err := c.Hysteresis.Validate(); err != nil {
		return err
	}
	for i, s := range c.Sources {
		if s == nil {
			return configErr("Config.Sources", i, "source is nil")
		}
	}
	return c.Budget.Validate()
}

// Governor bundles the governor's parts over one shared pressure: the
// MemoryGuard and the Go heap source feed a UnifiedPressure, which the
// InboundGate (front door) and the ByteBudget (driver) both read.
type Governor struct {
	cfg      Config
	guard    *MemoryGuard
	heap     *HeapSource // nil when disabled
	pressure *UnifiedPressure
	budget   *ByteBudget
	gate     *InboundGate
}

// New validates cfg and builds the governor.
func New(cfg Config) (*Governor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.Sources = append([]Source(nil), cfg.Sources...)
	cfg.Actuators = append([]Actuator(nil), cfg.Actuators...)
	cfg.Budget = cfg.Budget.withDefaults()

	g := &Governor{cfg: cfg, guard: NewMemoryGuard(cfg.MemoryLimit, cfg.HardAt)}
	srcs := []Source{g.guard}
	if cfg.HeapLimit >= 0 {
		g.heap = NewHeapSourceExtra(cfg.HeapLimit, cfg.HardAt, cfg.HeapRefresh, cfg.ExtraMemory)
		if cfg.HostMemory != nil {
			g.heap.SetHostMemory(cfg.HostMemory)
		}
		if cfg.ManageGoMemoryLimit {
			g.heap.ManageGoMemoryLimit(true)
		}
		srcs = append(srcs, g.heap)
	}
	srcs = append(srcs, cfg.Sources...)
	var err error
	if g.pressure, err = NewUnifiedPressure(cfg.Hysteresis, srcs...); err != nil {
		return nil, err
	}
	if g.budget, err = NewByteBudget(cfg.Budget, g.pressure); err != nil {
		return nil, err
	}
	g.gate = NewInboundGate(g.pressure, cfg.Actuators...)
	return g, nil
}

// Config returns the configuration in use, defaults filled.
func (g *Governor) Config() Config { return g.cfg }

// Guard returns the memory guard every in-flight byte is leased from.
func (g *Governor) Guard() *MemoryGuard { return g.guard }

// Heap returns the Go heap source (which also counts Config.ExtraMemory),
// or nil when Config.HeapLimit is -1.
func (g *Governor) Heap() *HeapSource { return g.heap }

// MeasureBaseline measures the memory baseline now (see
// HeapSource.MeasureBaseline): call it once start-up has loaded everything
// and before traffic flows. Without a heap source it returns the zero
// Baseline.
func (g *Governor) MeasureBaseline() Baseline {
	if g.heap == nil {
		return Baseline{}
	}
	return g.heap.MeasureBaseline()
}

// Baseline returns the memory baseline of the last reading (the zero
// Baseline without a heap source).
func (g *Governor) Baseline() Baseline {
	if g.heap == nil {
		return Baseline{}
	}
	return g.heap.Baseline()
}

// Pressure returns the unified pressure shared by the gate and the budget.
func (g *Governor) Pressure() *UnifiedPressure { return g.pressure }

// Budget returns the AIMD byte budget.
func (g *Governor) Budget() *ByteBudget { return g.budget }

// Gate returns the inbound gate.
func (g *Governor) Gate() *InboundGate { return g.gate }

// AddSource adds a pressure source (e.g. a Gauge for sink health). Meant for
// wiring before traffic flows; safe at any time.
func (g *Governor) AddSource(s Source) { g.pressure.AddSource(s) }

// AddActuator adds a gate actuator (see InboundGate.AddActuator).
func (g *Governor) AddActuator(a Actuator) { g.gate.AddActuator(a) }

// Snapshot returns the pressure state (allocates; for admin and metrics).
func (g *Governor) Snapshot() Snapshot { return g.pressure.Snapshot() }
