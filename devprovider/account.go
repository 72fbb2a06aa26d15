package devprovider

import (
	"maps"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
)

// The provider's own home page lists the clients this browser approved,
// with "Sign in as someone else" and "Forget my approval": without them a
// remembered approval makes every later sign-in skip the provider's pages,
// and another name, or the Deny button, could not be reached without
// clearing cookies.

// approvals are the clients this browser approved.
func (p *Provider) approvals(r *http.Request) []approval {
	var out []approval
	for _, id := range slices.Sorted(maps.Keys(p.Clients)) {
		if user, ok := remembered(r, id); ok {
			out = append(out, approval{ClientID: id, User: user})
		}
	}
	return out
}

// home is GET /: what this browser approved.
func (p *Provider) home(w http.ResponseWriter, r *http.Request) error {
	d := pageData{Title: "Your account at the dev provider", Approvals: p.approvals(r)}
	if len(d.Approvals) == 0 {
		d.Message = "This browser has approved no application: the next sign-in shows the consent page."
	}
	return writePage(w, http.StatusOK, d)
}

// forget is POST /forget: the approval of client_id goes. With then=login
// the browser goes on to sign in to that application again, as someone
// else: its login path (the module's default, beside the callback) with
// interactive=1, which starts a new login whatever session the browser
// has, and the consent page asks for a name.
func (p *Provider) forget(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return page(w, http.StatusMethodNotAllowed, "Method not allowed", "Use the buttons on this provider's home page.", nil)
	}
	clientID := r.PostFormValue("client_id")
	redirect, known := p.Clients[clientID]
	if !known {
		return page(w, http.StatusBadRequest, "Unknown client", "This provider has no such client.", nil)
	}
	for _, c := range []*http.Cookie{
		{Name: rememberCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode},
		{Name: rememberCrossSiteCookie, Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteNoneMode},
	} {
		http.SetCookie(w, c)
	}
	u, err := url.Parse(redirect)
	if err != nil {
		return err
	}
	site := u.Scheme + "://" + u.Host
	if r.PostFormValue("then") == "login" {
		login := path.Join(path.Dir(u.Path), "login")
		if !strings.HasPrefix(login, "/") {
			login = "/oauth/login"
		}
		http.Redirect(w, r, site+login+"?interactive=1&return_to=%2F", http.StatusSeeOther)
		return nil
	}
	return writePage(w, http.StatusOK, pageData{Title: "Approval forgotten",
		Message: "The next sign-in to " + clientID + " shows the consent page again, where you can pick another name or deny.", Link: site + "/"})
}
