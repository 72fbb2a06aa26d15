package tokencache

import (
	"testing"
	"time"
)

// TestRevocationListEnds: a session ends when its user, or everyone, was
// revoked at or after its login; others, and later logins, live.
func TestRevocationListEnds(t *testing.T) {
	type owner struct {
		subject string
		issued  time.Time
	}
	at := func(user string, login time.Time) owner { return owner{user, login} }
	t0 := time.Unix(1_800_000_000, 0)
	users := &revocationList{Users: map[string]int64{"alice": t0.Unix()}}
	everyone := &revocationList{AllBefore: t0.Unix()}
	for _, tc := range []struct {
		name     string
		l        *revocationList
		identity owner
		ends     bool
	}{
		{"nothing revoked", nil, at("alice", t0), false},
		{"alice, logged in before", users, at("alice", t0.Add(-time.Hour)), true},
		{"alice, in the same second", users, at("alice", t0), true},
		{"alice, logged in after", users, at("alice", t0.Add(time.Second)), false},
		{"bob", users, at("bob", t0.Add(-time.Hour)), false},
		{"bob, sealed without a login time", users, at("bob", time.Time{}), false},
		{"alice, sealed without a login time", users, at("alice", time.Time{}), true},
		{"everyone, before", everyone, at("bob", t0.Add(-time.Minute)), true},
		{"everyone, after", everyone, at("bob", t0.Add(time.Second)), false},
	} {
		if got := tc.l.ends(tc.identity.subject, "", tc.identity.issued); got != tc.ends {
			t.Errorf("%s: ends = %v, want %v", tc.name, got, tc.ends)
		}
	}
}
