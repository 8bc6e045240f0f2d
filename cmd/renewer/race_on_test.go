//go:build race

package main

// raceEnabled: this test binary, and so the "renewer" it runs as, has the
// race detector.
const raceEnabled = true
