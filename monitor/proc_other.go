//go:build !unix

package monitor

import "time"

func processCPU() (time.Duration, bool) { return 0, false }

func processRSS() (int64, bool) { return 0, false }
