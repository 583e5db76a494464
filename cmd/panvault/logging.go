package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// parseLevel maps a config level name ("" means info) to slog.
func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q", s)
}

// newLogger returns the process logger: JSON (default) or text on w.
// Nothing logged through it may carry a PAN, PIN or key byte; the packages
// below log identifiers, masked PANs and KCVs only.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	lvl, err := parseLevel(level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}

// newRaftLogger returns an hclog logger for raftstore (hashicorp/raft logs
// through hclog) in the same format and level as the process logger.
func newRaftLogger(w io.Writer, format, level string) hclog.Logger {
	lvl := hclog.Info
	switch strings.ToLower(level) {
	case "debug":
		lvl = hclog.Debug
	case "warn", "warning":
		lvl = hclog.Warn
	case "error":
		lvl = hclog.Error
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       "raft",
		Level:      lvl,
		Output:     w,
		JSONFormat: format != "text",
	})
}
