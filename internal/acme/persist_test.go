package acme

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/testca"
)

func TestPersistRecordValue(t *testing.T) {
	until := time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		issuer, account, policy string
		until                   time.Time
		want, err               string
	}{
		{"ca.example", "https://ca.example/acct/1", "", time.Time{}, "ca.example; accounturi=https://ca.example/acct/1", ""},
		{"CA.Example.", "https://ca.example/acct/1", "wildcard", until, "ca.example; accounturi=https://ca.example/acct/1; policy=wildcard; persistUntil=1811808000", ""},
		{"ca.example", "https://ca.example/acct/1", "Wildcard", time.Time{}, "ca.example; accounturi=https://ca.example/acct/1; policy=wildcard", ""},
		{"ca.example", "https://ca.example/acct/1", "subdomains", time.Time{}, "", `policy "subdomains"`},
		{"", "https://ca.example/acct/1", "", time.Time{}, "", "invalid issuer"},
		{"ca.example", "", "", time.Time{}, "", "invalid account URI"},
		{"ca.example", "https://ca.example/a;b", "", time.Time{}, "", "invalid account URI"},
	} {
		got, err := PersistRecord(tc.issuer, tc.account, tc.policy, tc.until)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("PersistRecord(%q, %q, %q) error = %v, want %q", tc.issuer, tc.account, tc.policy, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("PersistRecord(%q, %q, %q) = %q, %v; want %q", tc.issuer, tc.account, tc.policy, got, err, tc.want)
			continue
		}
		// What renewer prints, a CA reads back the same.
		s, err := ParsePersistValue(got)
		if err != nil || s.IssuerDomain != "ca.example" || s.AccountURI != tc.account || s.Wildcard != (tc.policy != "") || !s.PersistUntil.Equal(tc.until) {
			t.Errorf("ParsePersistValue(%q) = %+v, %v", got, s, err)
		}
	}
	if _, err := (PersistSpec{Form: PersistForm(9), IssuerDomain: "ca.example", AccountURI: "https://a"}).Value(); err == nil {
		t.Error("an unknown record form was built")
	}
}

func TestPersistNameAndZoneLine(t *testing.T) {
	if n := PersistName("*.Example.COM."); n != "_validation-persist.example.com." {
		t.Errorf("PersistName = %q", n)
	}
	if l := PersistZoneLine("www.example.com", "ca.example; accounturi=https://a/1", 3600); l != `_validation-persist.www.example.com. 3600 IN TXT "ca.example; accounturi=https://a/1"` {
		t.Errorf("zone line = %s", l)
	}
	long := strings.Repeat("a", 300)
	l := PersistZoneLine("example.com", long, 60)
	if !strings.HasSuffix(l, fmt.Sprintf("TXT %q %q", long[:255], long[255:])) {
		t.Errorf("a value over 255 bytes is not split into character-strings: %s", l)
	}
}

func TestJudgePersist(t *testing.T) {
	now := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	me, other := "https://ca.example/acct/1", "https://ca.example/acct/2"
	want := persistWant{Issuers: []string{"ca.example"}, AccountURI: me}
	wild := persistWant{Issuers: []string{"ca.example"}, AccountURI: me, Wildcard: true}
	past, future := now.Add(-time.Hour).Unix(), now.Add(time.Hour).Unix()
	for _, tc := range []struct {
		name string
		txts []string
		want persistWant
		kind PersistProblemKind // "" = validates
		text string
	}{
		{"ok", []string{"ca.example; accounturi=" + me}, want, "", ""},
		{"ok among others", []string{"other.example; accounturi=x", "ca.example; accounturi=" + me}, want, "", ""},
		{"issuer unknown yet: any", []string{"other.example; accounturi=" + me}, persistWant{AccountURI: me}, "", ""},
		{"tags case-insensitive", []string{"CA.example;AccountURI=" + me + ";Policy=WILDCARD"}, wild, "", ""},
		{"future persistUntil", []string{fmt.Sprintf("ca.example; accounturi=%s; persistUntil=%d", me, future)}, want, "", ""},
		{"missing", nil, want, PersistMissing, "no TXT record at _validation-persist.www.example.com."},
		{"wrong issuer", []string{"other.example; accounturi=" + me}, want, PersistWrongIssuer, `name the issuer "other.example", but the CA's issuer domain is ca.example`},
		{"another account", []string{"ca.example; accounturi=" + other}, want, PersistOtherAccount, "names the account " + other + ", not this account " + me},
		{"no wildcard", []string{"ca.example; accounturi=" + me}, wild, PersistNoWildcard, "lacks policy=wildcard"},
		{"other policy is none", []string{"ca.example; accounturi=" + me + "; policy=subdomain"}, wild, PersistNoWildcard, "lacks policy=wildcard"},
		{"expired", []string{fmt.Sprintf("ca.example; accounturi=%s; persistUntil=%d", me, past)}, want, PersistExpired, "persistUntil=" + fmt.Sprint(past)},
		{"malformed", []string{"ca.example; accounturi=" + me + ";"}, want, PersistMalformed, "trailing"},
		{"no accounturi", []string{"ca.example; policy=wildcard"}, want, PersistMalformed, "no accounturi"},
		{"closest wins", []string{"other.example; accounturi=" + me, "ca.example; accounturi=" + other, fmt.Sprintf("ca.example; accounturi=%s; persistUntil=%d", me, past)}, want, PersistExpired, "has passed"},
	} {
		p := judgePersist("www.example.com", tc.txts, tc.want, now)
		switch {
		case tc.kind == "" && p != nil:
			t.Errorf("%s: %v, want it to validate", tc.name, p)
		case tc.kind != "" && p == nil:
			t.Errorf("%s: validates, want %s", tc.name, tc.kind)
		case tc.kind != "" && (p.Kind != tc.kind || !strings.Contains(p.Detail, tc.text)):
			t.Errorf("%s: %s: %s, want %s containing %q", tc.name, p.Kind, p.Detail, tc.kind, tc.text)
		}
	}
}

// orderLog counts the orders Pebble adds (its log says "Added order").
type orderLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *orderLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *orderLog) orders() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), "Added order")
}

// dns-persist-01 against Pebble, which looks the records up in a real
// Knot DNS: with no record, the record of another account, or an expired
// one, Obtain says what is wrong and places no order; after the record
// PersistRecords prints is published, a name and its wildcard are issued
// with no DNS provider at all.
func TestObtainDNSPersist(t *testing.T) {
	t.Parallel()
	knot := testca.StartKnot(t, testca.KnotZone{Name: "example.test", Key: "owner"})
	logs := &orderLog{}
	ca := testca.StartT(t, testca.Options{DNSServer: knot.Addr, Log: logs})
	c := testClient(t, ca, nil)
	ctx := context.Background()
	domains := []string{"persist.example.test", "*.persist.example.test"}
	preq := PersistRequest{Wildcard: true, Resolvers: []string{knot.Addr}}
	req := Request{Domains: domains, Persist: &preq}
	info, err := c.PersistRecords(ctx, domains, preq)
	if err != nil {
		t.Fatal(err)
	}
	if info.IssuerDomain != "pebble.letsencrypt.org" || info.Source != "directory" || !strings.HasPrefix(info.AccountURI, "https://") || len(info.Records) != 1 {
		t.Fatalf("info = %+v", info)
	}
	rec := info.Records[0]
	wantValue := "pebble.letsencrypt.org; accounturi=" + info.AccountURI + "; policy=wildcard"
	if rec.Name != "_validation-persist.persist.example.test." || rec.Value != wantValue || fmt.Sprint(rec.Domains) != fmt.Sprint(domains) {
		t.Fatalf("record = %+v", rec)
	}

	refused := func(kind PersistProblemKind, text string) {
		t.Helper()
		before := logs.orders()
		_, err := c.Obtain(ctx, req)
		var pe *PersistRecordError
		if !errors.As(err, &pe) {
			t.Fatalf("Obtain = %v, want a PersistRecordError (%s)", err, kind)
		}
		if pe.Problems[0].Kind != kind || !strings.Contains(err.Error(), text) || !strings.Contains(err.Error(), "publish _validation-persist.persist.example.test. TXT") {
			t.Errorf("error = %v, want %s with %q and the record to publish", err, kind, text)
		}
		if n := logs.orders() - before; n != 0 {
			t.Errorf("%d orders placed with a record that cannot validate", n)
		}
	}
	refused(PersistMissing, "no TXT record")
	const other = "https://127.0.0.1:1/my-account/999"
	if err := knot.SetTXT("example.test", "owner", rec.Name, "pebble.letsencrypt.org; accounturi="+other+"; policy=wildcard"); err != nil {
		t.Fatal(err)
	}
	refused(PersistOtherAccount, "names the account "+other)
	if err := knot.SetTXT("example.test", "owner", rec.Name, wantValue+"; persistUntil=1700000000"); err != nil {
		t.Fatal(err)
	}
	refused(PersistExpired, "persistUntil=1700000000")
	if err := knot.SetTXT("example.test", "owner", rec.Name, "ca.other.example; accounturi="+info.AccountURI+"; policy=wildcard"); err != nil {
		t.Fatal(err)
	}
	refused(PersistWrongIssuer, `"ca.other.example", but the CA's issuer domain is pebble.letsencrypt.org`)

	if err := knot.SetTXT("example.test", "owner", rec.Name, rec.Value); err != nil {
		t.Fatal(err)
	}
	cert, err := c.Obtain(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if leaf := leafOf(t, cert); fmt.Sprint(leaf.DNSNames) != "[persist.example.test *.persist.example.test]" {
		t.Errorf("names = %v", leaf.DNSNames)
	}
	if txt, _ := knot.TXT(rec.Name); len(txt) != 1 || txt[0] != rec.Value {
		t.Errorf("the persistent record was touched: %q", txt)
	}
}

// A resolver that does not answer is said so, not mistaken for a missing
// record.
func TestCheckPersistLookupFailed(t *testing.T) {
	err := CheckPersist(context.Background(), []string{"www.example.test"}, nil, "https://ca.example/acct/1",
		PersistRequest{Resolvers: []string{"127.0.0.1:1"}}, time.Now())
	var pe *PersistRecordError
	if !errors.As(err, &pe) || len(pe.Problems) != 1 || pe.Problems[0].Kind != PersistLookupFailed || !strings.Contains(err.Error(), "resolver 127.0.0.1:1") {
		t.Errorf("CheckPersist = %v, want a lookup failure naming the resolver", err)
	}
}
