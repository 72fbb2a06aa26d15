package authserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// signingAlgs are the algorithms a server's token may be signed with: the
// asymmetric ones only. "none", and HMAC with a public key as the secret,
// never verify anything.
var signingAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// Key set timing: a token signed with a key the set does not hold fetches
// the set again, but at most once per MinRefetch, so the server's key
// rotation needs no restart and a flood of made-up key ids costs the
// server nothing; the set is also fetched again once it is MaxKeyAge old.
const (
	MinRefetch = 5 * time.Second
	MaxKeyAge  = time.Hour
)

// KeySet is a server's signing keys (RFC 7517), fetched and cached. It
// implements go-oidc's KeySet.
type KeySet struct {
	url    func(context.Context) (string, error)
	client client
	now    func() time.Time

	fetchMu sync.Mutex // one fetch at a time
	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetched time.Time // last fetch attempt
	lastErr error     // its failure, if it failed
	loaded  bool      // keys came from at least one successful fetch
}

// NewKeySet returns the key set published at the URL url gives (a fixed
// jwks_url, or the discovered jwks_uri).
func NewKeySet(url func(context.Context) (string, error), timeout time.Duration) *KeySet {
	return &KeySet{url: url, client: newClient(timeout), now: time.Now}
}

// keyFetchNote, carried in a context, records that the key set could not
// be fetched: go-oidc flattens a key set's error into text, and the caller
// must still tell "the server is down" from "the token is bad".
type keyFetchNote struct{ err error }

type keyFetchNoteKey struct{}

// VerifySignature checks token's signature with the server's keys and
// returns its payload.
func (k *KeySet) VerifySignature(ctx context.Context, token string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(token, signingAlgs)
	if err != nil {
		return nil, untrusted("not a JWT signed with an asymmetric algorithm")
	}
	if len(jws.Signatures) != 1 {
		return nil, untrusted("not exactly one signature")
	}
	header := jws.Signatures[0].Header
	keys, loaded := k.cached()
	if !loaded || k.now().Sub(k.fetchedAt()) > MaxKeyAge {
		if keys, err = k.fetch(ctx); err != nil && !loaded {
			return nil, k.unavailable(ctx, err)
		}
	}
	if payload, ok := verifyWith(jws, header, keys); ok {
		return payload, nil
	}
	// Not signed by a key we hold: the server may have rotated its keys.
	if k.now().Sub(k.fetchedAt()) >= MinRefetch {
		if keys, err = k.fetch(ctx); err != nil {
			return nil, k.unavailable(ctx, err)
		}
		if payload, ok := verifyWith(jws, header, keys); ok {
			return payload, nil
		}
	}
	if header.KeyID != "" && !holdsKeyID(keys, header.KeyID) {
		return nil, untrusted("signed with a key the server does not publish (kid unknown)")
	}
	return nil, untrusted("signature does not verify with the server's keys")
}

func verifyWith(jws *jose.JSONWebSignature, header jose.Header, keys []jose.JSONWebKey) ([]byte, bool) {
	for _, key := range keys {
		if header.KeyID != "" && key.KeyID != header.KeyID {
			continue
		}
		if key.Use == "enc" || (key.Algorithm != "" && key.Algorithm != header.Algorithm) || !keyFitsAlg(key.Key, header.Algorithm) {
			continue
		}
		if payload, err := jws.Verify(key.Key); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// keyFitsAlg: the key is a public key of the kind the algorithm needs.
func keyFitsAlg(key any, alg string) bool {
	switch jose.SignatureAlgorithm(alg) {
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		_, ok := key.(*rsa.PublicKey)
		return ok
	case jose.ES256, jose.ES384, jose.ES512:
		_, ok := key.(*ecdsa.PublicKey)
		return ok
	case jose.EdDSA:
		_, ok := key.(ed25519.PublicKey)
		return ok
	}
	return false
}

func holdsKeyID(keys []jose.JSONWebKey, kid string) bool {
	for _, k := range keys {
		if k.KeyID == kid {
			return true
		}
	}
	return false
}

func (k *KeySet) cached() ([]jose.JSONWebKey, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys, k.loaded
}

func (k *KeySet) fetchedAt() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.fetched
}

// fetch gets the key set and returns what the set holds then. It fetches
// at most once per MinRefetch (however many callers, and whether the last
// try worked or not); a caller that waited for another's fetch takes its
// result.
func (k *KeySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	k.mu.Lock()
	if !k.fetched.IsZero() && k.now().Sub(k.fetched) < MinRefetch {
		keys, err := k.keys, k.lastErr
		k.mu.Unlock()
		return keys, err
	}
	k.mu.Unlock()
	keys, err := k.download(ctx)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.fetched, k.lastErr = k.now(), err
	if err != nil {
		return k.keys, err
	}
	k.keys, k.loaded = keys, true
	return keys, nil
}

func (k *KeySet) download(ctx context.Context) ([]jose.JSONWebKey, error) {
	url, err := k.url(ctx)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: jwks url: %w", ErrUnavailable, err)
	}
	req.Header.Set("Accept", "application/json")
	status, body, err := k.client.do(ctx, req)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("%w: %s answered %d", ErrUnavailable, req.URL.Redacted(), status)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("%w: %s is not a JSON Web Key Set: %w", ErrUnavailable, req.URL.Redacted(), err)
	}
	return set.Keys, nil
}

func (k *KeySet) unavailable(ctx context.Context, err error) error {
	if note, ok := ctx.Value(keyFetchNoteKey{}).(*keyFetchNote); ok {
		note.err = err
	}
	return err
}
