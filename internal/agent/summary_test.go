package agent

import (
	"errors"
	"testing"
)

func TestSummaryCountsDeployFailures(t *testing.T) {
	hookErr := errors.New("hook nginx: exit status 1")
	cases := []struct {
		name    string
		results []Result
		want    string
	}{
		{"all clean", []Result{{Action: Renewed}, {Action: Skipped}},
			"2 certificates: 1 renewed, 0 failed, 0 not deployed, 0 backing off"},
		{"renewed but hook failed", []Result{{Action: Renewed, HookErrs: []error{hookErr}}, {Action: Obtained}},
			"2 certificates: 2 renewed, 0 failed, 1 not deployed, 0 backing off"},
		{"deploy retry failed again", []Result{{Action: Applied, HookErrs: []error{hookErr}}},
			"1 certificates: 0 renewed, 0 failed, 1 not deployed, 0 backing off"},
		{"storage error after install", []Result{{Action: Renewed, StoreErr: errors.New("disk full")}},
			"1 certificates: 1 renewed, 0 failed, 1 not deployed, 0 backing off"},
		{"failed and waiting are not deploy failures", []Result{{Action: Failed, Err: hookErr}, {Action: Waiting, Err: hookErr}},
			"2 certificates: 0 renewed, 1 failed, 0 not deployed, 1 backing off"},
	}
	for _, c := range cases {
		if got := summary(c.results); got != c.want {
			t.Errorf("%s: summary = %q, want %q", c.name, got, c.want)
		}
	}
}
