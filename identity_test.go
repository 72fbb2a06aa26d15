package implicitgrant

import (
	"testing"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/authserver"
)

// TestOwnerOf: the cookie store's revocations read a packed identity's
// subject and login time.
func TestOwnerOf(t *testing.T) {
	login := time.Unix(1_800_000_000, 0)
	sub, issued := ownerOf(packIdentity(authserver.Identity{Subject: "alice"}, nil, login))
	if sub != "alice" || !issued.Equal(login) {
		t.Errorf("ownerOf = %q, %v; want alice, %v", sub, issued, login)
	}
	if sub, issued := ownerOf(packIdentity(authserver.Identity{Subject: "bob"}, nil, time.Time{})); sub != "bob" || !issued.IsZero() {
		t.Errorf("without a login time: %q, %v; want bob and the zero time", sub, issued)
	}
}
