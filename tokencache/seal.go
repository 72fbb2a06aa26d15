package tokencache

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// sealer encrypts session records with AES-256-GCM, so that neither a
// cookie nor a Redis dump reveals a token. The associated data binds a
// sealed record to where it is kept (a cookie name, a Redis key). It holds
// a key ring: the first key seals, every key opens, so a rotated-out
// secret's sessions stay valid until they expire.
type sealer struct {
	aeads atomic.Pointer[[]cipher.AEAD]
	ring  atomic.Pointer[[32]byte] // digest of the keys, to tell a changed ring
}

func newSealer(keys [][]byte) (*sealer, error) {
	s := &sealer{}
	return s, s.Rekey(keys)
}

// Rekey replaces the key ring (the first key seals from now on); sessions
// sealed with a key still in the ring keep opening.
func (s *sealer) Rekey(keys [][]byte) error {
	if len(keys) == 0 {
		return errors.New("no sealing key")
	}
	aeads := make([]cipher.AEAD, len(keys))
	for i, key := range keys {
		if len(key) != 32 {
			return errors.New("sealing key must be 32 bytes")
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return err
		}
		if aeads[i], err = cipher.NewGCM(block); err != nil {
			return err
		}
	}
	s.aeads.Store(&aeads)
	s.ring.Store(ringDigest(keys))
	return nil
}

func ringDigest(keys [][]byte) *[32]byte {
	h := sha256.New()
	for _, k := range keys {
		h.Write(k)
	}
	var d [32]byte
	h.Sum(d[:0])
	return &d
}

// sameRing reports whether keys are the ring the sealer holds.
func (s *sealer) sameRing(keys [][]byte) bool {
	r := s.ring.Load()
	return r != nil && *r == *ringDigest(keys)
}

// seal returns nonce | ciphertext of (expiry | authorization NUL identity).
func (s *sealer) seal(sess Session, ad []byte) []byte {
	aead := (*s.aeads.Load())[0]
	plain := make([]byte, 8, 8+len(sess.Authorization)+len(sess.RefreshToken)+32+len(sess.Identity))
	binary.BigEndian.PutUint64(plain, uint64(sess.Expires.UnixNano()))
	plain = append(plain, joinRecord(sess)...)
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	_, _ = rand.Read(out)
	return aead.Seal(out, out, plain, ad)
}

// open reverses seal with whichever key of the ring sealed it; ok is false
// for anything forged, truncated, sealed for another place or with a key
// no longer in the ring.
func (s *sealer) open(sealed, ad []byte) (Session, bool) {
	var plain []byte
	for _, aead := range *s.aeads.Load() {
		n := aead.NonceSize()
		if len(sealed) < n+8+aead.Overhead() {
			return Session{}, false
		}
		if p, err := aead.Open(nil, sealed[:n], sealed[n:], ad); err == nil {
			plain = p
			break
		}
	}
	if plain == nil {
		return Session{}, false
	}
	sess := splitRecord(string(plain[8:]))
	sess.Expires = time.Unix(0, int64(binary.BigEndian.Uint64(plain)))
	return sess, true
}

// joinRecord puts a session's strings in one: the authorization, then,
// with a refresh token, SOH, RefreshAt and TokenExpires (unix ms in base
// 36: 8 bytes each, which keeps a million sessions under 600 MB) and the
// refresh token, each after SOH, then NUL and the identity, and, with a
// Login or an IDToken, each after SOH. Tokens never hold a control
// character (RFC 6749 VSCHAR), nor does the identity (its caller strips
// them), so the first NUL and SOH are separators; one string is also one
// allocation per stored session.
func joinRecord(s Session) string {
	var refreshAt, tokenExpires string
	size := len(s.Authorization) + 1 + len(s.Identity)
	logout := s.Login != "" || s.IDToken != ""
	if logout {
		size += 2 + len(s.Login) + len(s.IDToken)
	}
	if s.RefreshToken != "" {
		refreshAt, tokenExpires = strconv.FormatInt(s.RefreshAt.UnixMilli(), 36), strconv.FormatInt(s.TokenExpires.UnixMilli(), 36)
		size += 3 + len(refreshAt) + len(tokenExpires) + len(s.RefreshToken)
	}
	var b strings.Builder
	b.Grow(size) // exactly: the record is kept as this one allocation
	b.WriteString(s.Authorization)
	if s.RefreshToken != "" {
		b.WriteByte(1)
		b.WriteString(refreshAt)
		b.WriteByte(1)
		b.WriteString(tokenExpires)
		b.WriteByte(1)
		b.WriteString(s.RefreshToken)
	}
	if s.Identity != "" || logout {
		b.WriteByte(0)
		b.WriteString(s.Identity)
	}
	if logout {
		b.WriteByte(1)
		b.WriteString(s.Login)
		b.WriteByte(1)
		b.WriteString(s.IDToken)
	}
	return b.String()
}

// splitRecord reverses joinRecord without copying.
func splitRecord(record string) Session {
	auth, identity, _ := strings.Cut(record, "\x00")
	identity, logout, _ := strings.Cut(identity, "\x01")
	s := Session{Authorization: auth, Identity: identity}
	s.Login, s.IDToken, _ = strings.Cut(logout, "\x01")
	if auth, refresh, ok := strings.Cut(auth, "\x01"); ok {
		refreshAt, rest, _ := strings.Cut(refresh, "\x01")
		tokenExpires, token, _ := strings.Cut(rest, "\x01")
		at, _ := strconv.ParseInt(refreshAt, 36, 64)
		exp, _ := strconv.ParseInt(tokenExpires, 36, 64)
		s.Authorization, s.RefreshToken, s.RefreshAt, s.TokenExpires = auth, token, time.UnixMilli(at), time.UnixMilli(exp)
	}
	return s
}
