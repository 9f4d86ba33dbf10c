package wasmhost

import (
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	f := func(name string, c Config, ok bool) {
		t.Helper()
		if err := c.Validate(); (err == nil) != ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", name, err, ok)
		}
	}
	f("zero", Config{}, true)
	f("explicit", Config{PoolSize: 4, MemoryLimit: 32 << 20, CallDeadline: time.Second, OnTrap: TrapFailBatch}, true)
	f("negative pool", Config{PoolSize: -1}, false)
	f("tiny memory", Config{MemoryLimit: 1 << 20}, false)
	f("huge memory", Config{MemoryLimit: 8 << 30}, false)
	f("negative deadline", Config{CallDeadline: -time.Second}, false)
	f("bad policy", Config{OnTrap: 9}, false)
	f("negative keep", Config{KeepVersions: -1}, false)

	d := Config{}.withDefaults()
	if d.MemoryLimit != 64<<20 || d.CallDeadline != 50*time.Millisecond || d.CallDeadlinePerRecord != 20*time.Microsecond ||
		d.RecycleAbove != 48<<20 || d.IsolateTraps != 3 || d.KeepVersions != 5 || d.PoolSize < 1 {
		t.Errorf("defaults %+v", d)
	}
	if got := d.deadline(1000); got != 70*time.Millisecond {
		t.Errorf("deadline(1000) = %v", got)
	}
	if d.memoryLimitPages() != 1024 {
		t.Errorf("pages %d", d.memoryLimitPages())
	}
}
