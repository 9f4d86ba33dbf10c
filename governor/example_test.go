package governor_test

import (
	"fmt"
	"time"

	"github.com/sluicehq/sluice/governor"
)

// A guard counts the bytes in flight; every lease is released on every exit
// path, and releasing twice is harmless.
func ExampleMemoryGuard() {
	guard := governor.NewMemoryGuard(1000, 0.9)

	body := guard.Lease(600)
	fmt.Println("in flight:", guard.InFlight(), "level:", guard.Level(), "hard:", guard.Hard())

	batch := guard.Lease(320)
	fmt.Println("in flight:", guard.InFlight(), "hard:", guard.Hard())

	batch.Release()
	body.Release()
	body.Release() // idempotent
	var none *governor.Lease
	none.Release() // a nil lease is valid

	fmt.Println("in flight:", guard.InFlight(), "peak:", guard.Peak())
	// Output:
	// in flight: 600 level: 0.6 hard: false
	// in flight: 920 hard: true
	// in flight: 0 peak: 920
}

// The latch closes above PauseAbove, stays closed inside the band and opens
// only below ResumeBelow; the gate follows it and tells its actuators once
// per edge.
func ExampleInboundGate() {
	queue := governor.NewGauge("queue")
	pressure, err := governor.NewUnifiedPressure(governor.DefaultHysteresis(), queue)
	if err != nil {
		panic(err)
	}
	gate := governor.NewInboundGate(pressure, governor.ActuatorFuncs{
		OnPause:  func(by string, level float64) { fmt.Printf("  pause (by %s at %.2f)\n", by, level) },
		OnResume: func(level float64) { fmt.Printf("  resume (at %.2f)\n", level) },
	})
	for _, level := range []float64{0.50, 0.85, 0.70, 0.60, 0.75} {
		queue.Set(level, false)
		fmt.Printf("level %.2f: %s\n", level, gate.Evaluate())
	}
	fmt.Println("rejections:", gate.Rejections())
	// Output:
	// level 0.50: yes
	//   pause (by queue at 0.85)
	// level 0.85: hold
	// level 0.70: hold
	//   resume (at 0.60)
	// level 0.60: yes
	// level 0.75: yes
	// rejections: 2
}

// The byte budget halves when processing takes more than the target share of
// the ingest interval, grows by a fixed step when it takes less, and shrinks
// at once when a pressure source is HARD.
func ExampleByteBudget() {
	sink := governor.NewGauge("sink")
	pressure, err := governor.NewUnifiedPressure(governor.DefaultHysteresis(), sink)
	if err != nil {
		panic(err)
	}
	budget, err := governor.NewByteBudget(governor.BudgetConfig{
		Start:      64 << 10,
		Min:        8 << 10,
		Max:        128 << 10,
		TargetUtil: 0.7,
		Decrease:   0.5,
		Increase:   16 << 10,
	}, pressure)
	if err != nil {
		panic(err)
	}
	interval := 100 * time.Millisecond
	fmt.Println("start:", budget.Bytes()>>10, "KiB")

	budget.Observe(64<<10, 90*time.Millisecond, interval) // ρ 0.9 > 0.7
	fmt.Println("slow:", budget.Bytes()>>10, "KiB")

	budget.Observe(32<<10, 20*time.Millisecond, interval) // ρ 0.2 < 0.7
	budget.Observe(48<<10, 20*time.Millisecond, interval)
	fmt.Println("fast twice:", budget.Bytes()>>10, "KiB")

	sink.Set(0, true)              // sink down: HARD
	budget.Observe(0, 0, interval) // shrinks whatever ρ
	budget.Observe(0, 0, interval)
	budget.Observe(0, 0, interval)
	fmt.Println("hard x3:", budget.Bytes()>>10, "KiB (floor)")
	// Output:
	// start: 64 KiB
	// slow: 32 KiB
	// fast twice: 64 KiB
	// hard x3: 8 KiB (floor)
}

// A Governor wires the guard, the Go heap source, the unified pressure, the
// budget and the gate from one Config.
func ExampleNew() {
	gov, err := governor.New(governor.Config{
		MemoryLimit: 1 << 20,
		HeapLimit:   -1, // no heap source in this example
		Budget:      governor.BudgetConfig{Max: 1 << 20},
	})
	if err != nil {
		panic(err)
	}
	sink := governor.NewGauge("sink")
	gov.AddSource(sink)

	fmt.Println(gov.Gate().Evaluate(), gov.Budget().Bytes()>>10, "KiB")
	sink.Set(0, true)
	gov.Budget().Observe(0, 0, time.Second)
	fmt.Println(gov.Gate().Evaluate(), gov.Budget().Bytes()>>10, "KiB", "latched by", gov.Snapshot().LatchedBy)
	// Output:
	// yes 1024 KiB
	// hold 512 KiB latched by sink
}

// The baseline is the memory fixed once the process runs; start refuses a
// limit it leaves less than a quarter of to traffic, naming the numbers.
func ExampleBaseline_Check() {
	b := governor.Baseline{Limit: 128 << 20, Runtime: 30 << 20, Other: 21 << 20, Code: 33 << 20, Pools: 23 << 20}
	b.Total = b.Runtime + b.Other + b.Code + b.Pools
	fmt.Printf("traffic gets %d MiB (%.0f%%)\n", b.Traffic()>>20, 100*b.TrafficShare())
	fmt.Println(b.Check(governor.DefaultMinTrafficShare))
	b.Pools = 11 << 20 // one instance per transform instead of two
	b.Total = b.Runtime + b.Other + b.Code + b.Pools
	fmt.Println(b.Check(governor.DefaultMinTrafficShare))
	// Output:
	// traffic gets 21 MiB (16%)
	// governor: memory baseline 107.0 MiB (runtime 30.0 MiB, binary and libraries 21.0 MiB, compiled code 33.0 MiB, instance pools 23.0 MiB) leaves 21.0 MiB (16%) of the 128.0 MiB memory limit to traffic; at least 25% is needed: a limit of at least 143.0 MiB, or a smaller baseline
	// <nil>
}
