package main

import (
	"log/slog"
	"os"
	"runtime/debug"
)

// applyRuntimeConfig sets the garbage collector's target and the soft
// memory limit from the config, unless GOGC or GOMEMLIMIT are set.
func applyRuntimeConfig(rc runtimeConfig, log *slog.Logger) {
	if os.Getenv("GOGC") == "" {
		pct := rc.GCPercent
		if pct == 0 {
			pct = defaultGCPercent
		}
		debug.SetGCPercent(pct)
		log.Debug("runtime", "gc_percent", pct)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		mib := rc.MemoryLimitMiB
		if mib == 0 {
			mib = defaultMemoryLimitMiB
		}
		debug.SetMemoryLimit(int64(mib) << 20)
		log.Debug("runtime", "memory_limit_mib", mib)
	}
}
