// Command pause is the sandbox ("pause") image of the local cluster's real nodes: it holds a
// pod's namespaces open and sleeps until SIGTERM or SIGINT, like the upstream pause image.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	// As PID 1 of its pod, reap whatever gets re-parented to us (shared PID namespaces).
	reap := make(chan os.Signal, 8)
	signal.Notify(reap, syscall.SIGCHLD)
	for {
		select {
		case <-stop:
			os.Exit(0)
		case <-reap:
			for {
				pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
		}
	}
}
