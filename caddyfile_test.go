package implicitgrant

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddytest"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func TestUnmarshalCaddyfileEverySubdirective(t *testing.T) {
	d := caddyfile.NewTestDispenser(`implicit_grant {
		authorize_url      https://accounts.example.com/authorize
		client_id          {env.CLIENT_ID}
		redirect_uri       https://dash.example.com/oauth/callback
		scope              user-read-private user-read-email
		show_dialog
		preserve_fragment  off
		param              audience https://api.example.com
		param              prompt consent
		secret             {env.IMPLICIT_GRANT_SECRET} {env.OLD_SECRET}
		cookie_name        __Host-dash
		login_path         /auth/login
		logout_path        /auth/logout
		logout_redirect    https://example.com/bye
		revocation_url     https://idp.example.com/revoke
		accept_bearer      dashboard-api https://dash.example.com
		end_session
		backchannel_logout_path /oauth/backchannel
		default_expires_in 30m
		expiry_leeway      45s
		state_ttl          5m
		unauthenticated    reject
		error_pages        handle_errors
		openid             https://idp.example.com
		validate           introspect https://idp.example.com/introspect {
			client_id     dashboard-introspector
			client_secret {env.INTROSPECT_SECRET}
		}
		allow              email *@corp.example
		allow              groups dashboards admins
		claims             sub email groups
		userinfo           always
		revalidate         5m
		store              redis {env.REDIS_URL} {
			key_prefix dash:
			timeout    250ms
		}
	}`)
	var h Handler
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	want := Handler{
		AuthorizeURL:          "https://accounts.example.com/authorize",
		ClientID:              "{env.CLIENT_ID}",
		RedirectURI:           "https://dash.example.com/oauth/callback",
		Scopes:                []string{"user-read-private", "user-read-email"},
		ShowDialog:            true,
		PreserveFragment:      new(bool),
		Params:                map[string]string{"audience": "https://api.example.com", "prompt": "consent"},
		Secret:                "{env.IMPLICIT_GRANT_SECRET}",
		PreviousSecrets:       []string{"{env.OLD_SECRET}"},
		CookieName:            "__Host-dash",
		LoginPath:             "/auth/login",
		LogoutPath:            "/auth/logout",
		LogoutRedirect:        "https://example.com/bye",
		RevocationURL:         "https://idp.example.com/revoke",
		AcceptBearer:          []string{"dashboard-api", "https://dash.example.com"},
		EndSession:            true,
		BackchannelLogoutPath: "/oauth/backchannel",
		DefaultExpiresIn:      caddy.Duration(30 * time.Minute),
		ExpiryLeeway:          caddy.Duration(45 * time.Second),
		StateTTL:              caddy.Duration(5 * time.Minute),
		Unauthenticated:       UnauthenticatedReject,
		ErrorPages:            ErrorPagesHandleErrors,
		OpenID:                "https://idp.example.com",
		Validation:            &Validation{Mode: "introspect", URL: "https://idp.example.com/introspect", ClientID: "dashboard-introspector", ClientSecret: "{env.INTROSPECT_SECRET}"},
		Allow:                 []AllowRule{{Claim: "email", Patterns: []string{"*@corp.example"}}, {Claim: "groups", Patterns: []string{"dashboards", "admins"}}},
		Claims:                []string{"sub", "email", "groups"},
		Userinfo:              UserinfoAlways,
		Revalidate:            caddy.Duration(5 * time.Minute),
		StoreRaw:              json.RawMessage(`{"key_prefix":"dash:","timeout":250000000,"type":"redis","url":"{env.REDIS_URL}"}`),
	}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("got  %+v\nwant %+v", h, want)
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	const required = "authorize_url https://as.example/authorize\nclient_id c\nredirect_uri https://app.example/cb\n"
	for _, tc := range []struct{ name, body, wantErr string }{
		{"unknown", required + "colour blue", "unrecognized subdirective: colour"},
		{"repeated", required + "client_id d", "client_id: given more than once"},
		{"repeated param", required + "param prompt a\nparam prompt b", "param: prompt given more than once"},
		{"no value", required + "secret", "secret: expected a value"},
		{"two values", required + "cookie_name a b", "cookie_name: expected one value, got 2"},
		{"empty scope", required + "scope", "scope: expected at least one scope"},
		{"show_dialog arg", required + "show_dialog yes", "show_dialog: takes no arguments"},
		{"preserve_fragment value", required + "preserve_fragment maybe", "preserve_fragment: expected on or off, got 'maybe'"},
		{"param one arg", required + "param audience", "param: expected a name and a value"},
		{"bad duration", required + "default_expires_in soon", "default_expires_in: bad duration value 'soon'"},
		{"bad max_sessions", required + "store memory {\nmax_sessions -3\n}", "max_sessions: expected a positive integer, got '-3'"},
		{"unknown store", required + "store disk", "store: 'disk' is not a known store (memory, cookie, redis)"},
		{"redis without url", required + "store redis", "store: redis needs a url"},
		{"option of another store", required + "store cookie {\nmax_sessions 5\n}", "store: unrecognized option for cookie: max_sessions"},
		{"template unknown page", required + "template login login.html", "template: unknown page 'login'; one of relay, start, error, signed_out, forbidden"},
		{"template without file", required + "template error", "template: expected a page"},
		{"template twice", required + "template error a.html\ntemplate error b.html", "template: error given more than once"},
		{"max_sessions_per_user zero", required + "max_sessions_per_user 0", "max_sessions_per_user: expected a positive number of sessions, got '0'"},
		{"max_sessions_per_user word", required + "max_sessions_per_user many", "max_sessions_per_user: expected a positive number of sessions, got 'many'"},
		{"unknown store option", required + "store memory {\nsize 5\n}", "store: unrecognized option for memory: size"},
		{"memory with url", required + "store memory redis://x", "store: memory takes no further arguments"},
		{"repeated store", required + "store memory\nstore cookie", "store: given more than once"},
		{"validate without mode", required + "validate", "validate: expected jwt, introspect <url>, userinfo <url> or none"},
		{"validate unknown option", required + "validate jwt {\nkeys x\n}", "validate: unrecognized option: keys"},
		{"validate repeated option", required + "validate jwt {\nissuer a\nissuer b\n}", "validate: issuer given more than once"},
		{"allow one arg", required + "allow email", "allow: expected a claim and at least one pattern"},
		{"empty claims", required + "claims", "claims: expected at least one claim name"},
		{"userinfo without a value", required + "userinfo", "userinfo: expected a value"},
		{"end_session with a value", required + "end_session yes", "end_session: takes no arguments"},
		{"accept_bearer without an audience", required + "accept_bearer", "accept_bearer: expected at least one audience"},
		{"bad revalidate", required + "revalidate often", "revalidate: bad duration value 'often'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := caddyfile.NewTestDispenser("implicit_grant {\n" + tc.body + "\n}")
			err := new(Handler).UnmarshalCaddyfile(d)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
	if err := new(Handler).UnmarshalCaddyfile(caddyfile.NewTestDispenser("implicit_grant extra {\n}")); err == nil {
		t.Error("an argument on the directive line was accepted")
	}
}

// TestProvisionRefusesBadValues: values only known after placeholders are
// replaced are checked when Caddy loads the config; the error names the field.
func TestProvisionRefusesBadValues(t *testing.T) {
	t.Setenv("IG_SHORT_SECRET", "too-short")
	ok := func() Handler {
		return Handler{AuthorizeURL: "https://as.example/authorize", ClientID: "c", RedirectURI: "https://app.example/cb", Secret: strings.Repeat("s", 32),
			Validation: &Validation{Mode: validateIntrospect, URL: "https://as.example/introspect"}}
	}
	for _, tc := range []struct {
		name    string
		mutate  func(*Handler)
		wantErr string
	}{
		{"plain http AS", func(h *Handler) { h.AuthorizeURL = "http://as.example/authorize" }, "authorize_url"},
		{"relative AS", func(h *Handler) { h.AuthorizeURL = "/authorize" }, "authorize_url"},
		{"AS query sets state", func(h *Handler) { h.AuthorizeURL = "https://as.example/a?state=x" }, "authorize_url"},
		{"relative redirect", func(h *Handler) { h.RedirectURI = "/cb" }, "redirect_uri"},
		{"redirect with fragment", func(h *Handler) { h.RedirectURI = "https://app.example/cb#x" }, "redirect_uri"},
		{"empty client id", func(h *Handler) { h.ClientID = "" }, "client_id: required"},
		{"short secret", func(h *Handler) { h.Secret = "{env.IG_SHORT_SECRET}" }, "secret: must be at least 32 bytes, got 9"},
		{"unset secret env", func(h *Handler) { h.Secret = "{env.IG_NOT_SET_ANYWHERE}" }, "secret: empty after replacing placeholders"},
		{"param overrides state", func(h *Handler) { h.Params = map[string]string{"state": "x"} }, `param: "state"`},
		{"param overrides response_type", func(h *Handler) { h.Params = map[string]string{"response_type": "code"} }, `param: "response_type"`},
		{"param form_post", func(h *Handler) { h.Params = map[string]string{"response_mode": "form_post"} }, "param: response_mode"},
		{"bad cookie name", func(h *Handler) { h.CookieName = "a;b" }, "cookie_name"},
		{"logout on callback", func(h *Handler) { h.LogoutPath = "/cb" }, "logout_path"},
		{"relative login path", func(h *Handler) { h.LoginPath = "login" }, "login_path"},
		{"bad mode", func(h *Handler) { h.Unauthenticated = "sometimes" }, "unauthenticated"},
		{"bad scope", func(h *Handler) { h.Scopes = []string{"a b"} }, "scope"},
		{"missing authorize_url", func(h *Handler) { h.AuthorizeURL = "" }, "authorize_url: required"},
		{"missing redirect_uri", func(h *Handler) { h.RedirectURI = "" }, "redirect_uri: required"},
		{"zero state_ttl", func(h *Handler) { h.StateTTL = caddy.Duration(time.Millisecond) }, "state_ttl: 1ms is too short"},
		{"negative leeway", func(h *Handler) { h.ExpiryLeeway = caddy.Duration(-time.Second) }, "expiry_leeway: -1s must not be negative"},
		{"bad error_pages", func(h *Handler) { h.ErrorPages = "custom" }, "error_pages"},
		{"no trust mode", func(h *Handler) { h.Validation = nil }, `trust: no way to prove tokens genuine is configured: add "openid <issuer>"`},
		{"openid and validate", func(h *Handler) { h.OpenID = "https://as.example" }, "trust: openid and validate"},
		{"http issuer", func(h *Handler) { h.Validation, h.OpenID = nil, "http://as.example" }, "openid: issuer \"http://as.example\" must be an https URL"},
		{"no authorize_url without openid", func(h *Handler) { h.AuthorizeURL = "" }, "authorize_url: required (or openid"},
		{"bad mode", func(h *Handler) { h.Validation.Mode = "trust-me" }, "validate: \"trust-me\" must be jwt, introspect, userinfo or none"},
		{"jwt without issuer", func(h *Handler) { h.Validation = &Validation{Mode: validateJWT} }, "validate jwt: issuer"},
		{"introspect plain http", func(h *Handler) { h.Validation.URL = "http://as.example/introspect" }, "validate introspect: url"},
		{"userinfo with client_id", func(h *Handler) {
			h.Validation = &Validation{Mode: validateUserinfo, URL: "https://as.example/me", ClientID: "x"}
		}, "validate userinfo: client_id does not apply"},
		{"secret without id", func(h *Handler) { h.Validation.ClientSecret = "s" }, "validate introspect: client_secret without client_id"},
		{"revalidate with jwt", func(h *Handler) {
			h.Validation = &Validation{Mode: validateJWT, Issuer: "https://as.example"}
			h.Revalidate = caddy.Duration(time.Minute)
		}, "revalidate: needs validate introspect or validate userinfo"},
		{"allow with none", func(h *Handler) {
			h.Validation = &Validation{Mode: validateNone}
			h.Allow = []AllowRule{{Claim: "email", Patterns: []string{"*@corp.example"}}}
		}, "allow: validate none knows nobody's claims"},
		{"allow without pattern", func(h *Handler) { h.Allow = []AllowRule{{Claim: "email"}} }, "allow: \"email\" needs a claim and at least one pattern"},
		{"claims named id", func(h *Handler) { h.Claims = []string{"id"} }, "claims: \"id\""},
		{"userinfo without openid", func(h *Handler) { h.Userinfo = UserinfoAlways }, "userinfo: only with openid"},
		{"userinfo unknown", func(h *Handler) { h.Validation, h.OpenID, h.Userinfo = nil, "https://as.example", "sometimes" }, `userinfo: "sometimes" must be missing, always or never`},
		{"logout_redirect to another host", func(h *Handler) { h.LogoutRedirect = "/\\evil.example/" }, "logout_redirect"},
		{"logout_redirect network path", func(h *Handler) { h.LogoutRedirect = "//evil.example/" }, "logout_redirect"},
		{"logout_redirect scheme", func(h *Handler) { h.LogoutRedirect = "javascript:alert(1)" }, "logout_redirect"},
		{"huge cookie_name", func(h *Handler) { h.CookieName = strings.Repeat("c", 3800) }, "cookie_name: 3800 bytes; at most 64"},
		{"bad store type", func(h *Handler) { h.StoreRaw = json.RawMessage(`{"type":"disk"}`) }, "store: "},
		{"negative max_sessions", func(h *Handler) { h.StoreRaw = json.RawMessage(`{"type":"memory","max_sessions":-1}`) }, "store: max_sessions -1 must be positive"},
		{"response_mode query", func(h *Handler) { h.ResponseMode = "query" }, `response_mode: "query" must be fragment or form_post`},
		{"renew_prompt login", func(h *Handler) { h.RenewPrompt = "login" }, `renew_prompt: "login" must be none or default`},
		{"renew_before too long", func(h *Handler) { h.RenewBefore = caddy.Duration(5 * time.Hour) }, "renew_before: 5h0m0s must be between 0 and half of max_session_lifetime"},
		{"renew_before with a prompt param", func(h *Handler) {
			h.RenewBefore = caddy.Duration(time.Minute)
			h.Params = map[string]string{"prompt": "consent"}
		}, "param prompt: renew_before sends prompt=none"},
		{"session_path is the login path", func(h *Handler) { h.SessionPath = "/oauth/login" }, "session_path: \"/oauth/login\" is also the login_path"},
		{"max_sessions_per_user with the cookie store", func(h *Handler) {
			h.MaxSessionsPerUser = 5
			h.StoreRaw = json.RawMessage(`{"type":"cookie"}`)
		}, "max_sessions_per_user: the cookie store keeps no sessions"},
		{"max_sessions_per_user too large", func(h *Handler) { h.MaxSessionsPerUser = 1_000_000 }, "max_sessions_per_user: 1000000 must be between 1 and 10000"},
		{"redis without url", func(h *Handler) { h.StoreRaw = json.RawMessage(`{"type":"redis"}`) }, "store: redis needs a url"},
		{"unknown response_type", func(h *Handler) { h.ResponseType = "id_token" }, `response_type: "id_token" must be token or code`},
		{"token_url with the implicit grant", func(h *Handler) { h.TokenURL = "https://as.example/token" }, "token_url: only for response_type code"},
		{"code without a token endpoint", func(h *Handler) { h.ResponseType = "code" }, "token_url: required with response_type code"},
		{"plain http token_url", func(h *Handler) { h.ResponseType, h.TokenURL = "code", "http://as.example/token" }, "token_url"},
		{"token_auth none with a secret", func(h *Handler) {
			h.ResponseType, h.TokenURL, h.ClientSecret, h.TokenAuth = "code", "https://as.example/token", strings.Repeat("s", 32), "none"
		}, "token_auth: none sends no secret"},
		{"client_secret_post without a secret", func(h *Handler) {
			h.ResponseType, h.TokenURL, h.TokenAuth = "code", "https://as.example/token", "client_secret_post"
		}, "token_auth: client_secret_post needs client_secret"},
		{"empty client_secret placeholder", func(h *Handler) {
			h.ResponseType, h.TokenURL, h.ClientSecret = "code", "https://as.example/token", "{env.IG_UNSET_CLIENT_SECRET}"
		}, "client_secret: empty after replacing placeholders"},
		{"allow without identity in the code flow", func(h *Handler) {
			h.ResponseType, h.TokenURL, h.Validation = "code", "https://as.example/token", nil
			h.Allow = []AllowRule{{Claim: "email", Patterns: []string{"*@corp.example"}}}
		}, "allow: without openid or validate"},
		{"same_site none", func(h *Handler) { h.SameSite = "none" }, `same_site: "none" must be lax or strict`},
		{"require_header Cookie", func(h *Handler) { h.RequireHeader = &RequiredHeader{Name: "Cookie", Value: "1"} }, "require_header: Cookie"},
		{"require_header bad name", func(h *Handler) { h.RequireHeader = &RequiredHeader{Name: "X CSRF", Value: "1"} }, "require_header"},
		{"redis unreachable", func(h *Handler) { h.StoreRaw = json.RawMessage(`{"type":"redis","url":"redis://127.0.0.1:1/0"}`) }, "session store unavailable"},
		{"end_session without openid", func(h *Handler) { h.EndSession = true }, "end_session: needs openid"},
		{"end_session with a relative logout_redirect", func(h *Handler) {
			h.Validation, h.OpenID, h.EndSession, h.LogoutRedirect = nil, "https://as.example", true, "/bye"
		}, "logout_redirect: with end_session"},
		{"backchannel_logout_path without openid", func(h *Handler) { h.BackchannelLogoutPath = "/oauth/backchannel" }, "backchannel_logout_path: needs openid"},
		{"backchannel_logout_path is the logout path", func(h *Handler) {
			h.Validation, h.OpenID, h.BackchannelLogoutPath = nil, "https://as.example", "/oauth/logout"
		}, `backchannel_logout_path: "/oauth/logout" is also the logout_path`},
		{"backchannel_logout_path relative", func(h *Handler) {
			h.Validation, h.OpenID, h.BackchannelLogoutPath = nil, "https://as.example", "backchannel"
		}, "backchannel_logout_path: \"backchannel\" must be a plain path"},
		{"plain http revocation_url", func(h *Handler) { h.RevocationURL = "http://as.example/revoke" }, "revocation_url"},
		{"accept_bearer with validate userinfo", func(h *Handler) {
			h.Validation, h.AcceptBearer = &Validation{Mode: validateUserinfo, URL: "https://as.example/me"}, []string{"api"}
		}, "accept_bearer: userinfo cannot tell whom a token was issued for"},
		{"accept_bearer with validate none", func(h *Handler) {
			h.Validation, h.AcceptBearer = &Validation{Mode: validateNone}, []string{"api"}
		}, "accept_bearer: none cannot"},
		{"accept_bearer with an empty audience", func(h *Handler) { h.AcceptBearer = []string{""} }, `accept_bearer: "" is not an audience`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := ok()
			tc.mutate(&h)
			ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
			defer cancel()
			err := h.Provision(ctx)
			defer h.Cleanup()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), strings.Repeat("s", 32)) || strings.Contains(err.Error(), "too-short") {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

// TestCaddyfileAdapt pins the JSON each Caddyfile in testdata/adapt
// produces: Caddyfile, a line of dashes, JSON.
func TestCaddyfileAdapt(t *testing.T) {
	forEachCase(t, "testdata/adapt/*.caddyfiletest", func(t *testing.T, in, out string) {
		if !caddytest.CompareAdapt(t, t.Name(), in, "caddyfile", out) {
			t.Error("adapted JSON differs")
		}
	})
}

// TestCaddyfileAdaptErrors: each Caddyfile in testdata/adapt/errors fails
// to adapt with the error after its line of dashes.
func TestCaddyfileAdaptErrors(t *testing.T) {
	forEachCase(t, "testdata/adapt/errors/*.caddyfiletest", func(t *testing.T, in, wantErr string) {
		_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(in), nil)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("got %v, want an error containing %q", err, wantErr)
		}
	})
}

// forEachCase runs one subtest per file matching pattern, with the parts
// before and after its line of dashes.
func forEachCase(t *testing.T, pattern string, run func(t *testing.T, in, out string)) {
	files, _ := filepath.Glob(pattern)
	if len(files) == 0 {
		t.Fatalf("no files match %s", pattern)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".caddyfiletest"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			in, out, ok := strings.Cut(string(data), "----------")
			if !ok {
				t.Fatalf("%s: no ---------- separator", f)
			}
			run(t, strings.TrimSpace(in), strings.TrimSpace(out))
		})
	}
}
