package agent

import (
	"errors"
	"testing"

	"github.com/renewer/renewer/internal/status"
)

func TestSummaryCountsDeployFailures(t *testing.T) {
	hookErr := errors.New("hook nginx: exit status 1")
	cases := []struct {
		name    string
		results []status.Result
		want    string
	}{
		{"all clean", []status.Result{{Action: status.Renewed}, {Action: status.Skipped}},
			"2 certificates: 1 renewed, 0 failed, 0 not deployed, 0 backing off"},
		{"renewed but hook failed", []status.Result{{Action: status.Renewed, HookErrs: []error{hookErr}}, {Action: status.Obtained}},
			"2 certificates: 2 renewed, 0 failed, 1 not deployed, 0 backing off"},
		{"deploy retry failed again", []status.Result{{Action: status.Applied, HookErrs: []error{hookErr}}},
			"1 certificates: 0 renewed, 0 failed, 1 not deployed, 0 backing off"},
		{"storage error after install", []status.Result{{Action: status.Renewed, StoreErr: errors.New("disk full")}},
			"1 certificates: 1 renewed, 0 failed, 1 not deployed, 0 backing off"},
		{"failed and waiting are not deploy failures", []status.Result{{Action: status.Failed, Err: hookErr}, {Action: status.Waiting, Err: hookErr}},
			"2 certificates: 0 renewed, 1 failed, 0 not deployed, 1 backing off"},
	}
	for _, c := range cases {
		if got := summary(c.results); got != c.want {
			t.Errorf("%s: summary = %q, want %q", c.name, got, c.want)
		}
	}
}
