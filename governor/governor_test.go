package governor

import (
	"math"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{MemoryLimit: 1 << 20}
	tests := []struct {
		name  string
		mod   func(*Config)
		field string
	}{
		{"minimal", func(*Config) {}, ""},
		{"heap disabled", func(c *Config) { c.HeapLimit = -1 }, ""},
		{"no memory limit", func(c *Config) { c.MemoryLimit = 0 }, "Config.MemoryLimit"},
		{"hardAt above 1", func(c *Config) { c.HardAt = 1.1 }, "Config.HardAt"},
		{"hardAt NaN", func(c *Config) { c.HardAt = math.NaN() }, "Config.HardAt"},
		{"heap limit -2", func(c *Config) { c.HeapLimit = -2 }, "Config.HeapLimit"},
		{"negative refresh", func(c *Config) { c.HeapRefresh = -time.Second }, "Config.HeapRefresh"},
		{"bad hysteresis", func(c *Config) { c.Hysteresis = Hysteresis{PauseAbove: 0.5, ResumeBelow: 0.6} }, "Hysteresis.PauseAbove"},
		{"nil source", func(c *Config) { c.Sources = []Source{nil} }, "Config.Sources"},
		{"bad budget", func(c *Config) { c.Budget.Decrease = 2 }, "BudgetConfig.Decrease"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			wantConfigErr(t, c.Validate(), tc.field)
			_, err := New(c)
			wantConfigErr(t, err, tc.field)
		})
	}
}

func TestGovernorWiring(t *testing.T) {
	queue := NewGauge("queue")
	rec := &edgeRecorder{}
	gov, err := New(Config{
		MemoryLimit: 1000,
		HeapLimit:   1 << 50, // far above any test heap: level ≈ 0
		Budget:      BudgetConfig{Max: 1 << 20},
		Sources:     []Source{queue},
		Actuators:   []Actuator{rec},
	})
	if err != nil {
		t.Fatal(err)
	}
	if gov.Guard().Limit() != 1000 || gov.Guard().HardAt() != DefaultHardAt {
		t.Fatalf("guard limit %d hardAt %v", gov.Guard().Limit(), gov.Guard().HardAt())
	}
	if gov.Heap() == nil || gov.Heap().Limit() != 1<<50 {
		t.Fatalf("heap source %v", gov.Heap())
	}
	if gov.Budget().Pressure() != gov.Pressure() || gov.Gate().Pressure() != gov.Pressure() {
		t.Fatal("budget and gate do not share the pressure")
	}
	c := gov.Config()
	if c.Hysteresis != DefaultHysteresis() || c.HeapRefresh != DefaultHeapRefresh || c.Budget.Min != 64<<10 {
		t.Fatalf("defaults not filled: %+v", c)
	}
	names := []string{}
	for _, s := range gov.Pressure().Sources() {
		names = append(names, s.Name())
	}
	if len(names) != 3 || names[0] != "memory_guard" || names[1] != "go_heap" || names[2] != "queue" {
		t.Fatalf("sources %v", names)
	}

	sink := NewGauge("sink")
	gov.AddSource(sink)
	late := &edgeRecorder{}
	gov.AddActuator(late)

	if gov.Gate().Evaluate() != Yes {
		t.Fatal("idle governor holds")
	}
	sink.Set(0, true)
	if gov.Gate().Evaluate() != Hold {
		t.Fatal("hard sink does not hold")
	}
	start := gov.Budget().Bytes()
	gov.Budget().Observe(0, 0, time.Second)
	if gov.Budget().Bytes() >= start {
		t.Fatal("hard sink does not shrink the budget")
	}
	s := gov.Snapshot()
	if !s.Latched || s.LatchedBy != "sink" || len(s.Sources) != 4 {
		t.Fatalf("Snapshot %+v", s)
	}
	for _, r := range []*edgeRecorder{rec, late} {
		if ev, _ := r.snapshot(); len(ev) != 1 || ev[0] != "pause:sink" {
			t.Fatalf("actuator events %v", ev)
		}
	}
}

func TestGovernorHeapDisabled(t *testing.T) {
	gov, err := New(Config{MemoryLimit: 100, HeapLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	if gov.Heap() != nil || len(gov.Pressure().Sources()) != 1 {
		t.Fatalf("heap source present: %v %d", gov.Heap(), len(gov.Pressure().Sources()))
	}
	l := gov.Guard().Lease(95)
	if gov.Gate().Evaluate() != Hold {
		t.Fatal("guard at 95% does not hold")
	}
	l.Release()
	if gov.Gate().Evaluate() != Yes {
		t.Fatal("released guard does not reopen")
	}
}
