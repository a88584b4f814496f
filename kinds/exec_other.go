//go:build !unix

package kinds

import (
	"os"
	"os/exec"
)

type sysSignal = os.Signal

var (
	sigTerm sysSignal = os.Kill
	sigKill sysSignal = os.Kill
)

func setProcessGroup(*exec.Cmd) {}

// signalGroup kills the child: without process groups, only the child.
func signalGroup(p *os.Process, _ sysSignal) error {
	if p == nil {
		return nil
	}
	return p.Kill()
}

func signalOf(*os.ProcessState) string { return "" }
