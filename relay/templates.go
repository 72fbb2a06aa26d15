package relay

import (
	"errors"
	"fmt"
	"html/template"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
)

// maxTemplateBytes bounds a template file: a page, not a site.
const maxTemplateBytes = 256 << 10

// Page kinds a site owner can restyle with their own template.
var templateKinds = []string{"relay", "start", ErrorPage, SignedOutPage, ForbiddenPage}

// TemplateKinds lists the pages LoadTemplate accepts.
func TemplateKinds() []string { return slices.Clone(templateKinds) }

var (
	scriptElement = regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script\s*>`)
	anyScriptTag  = regexp.MustCompile(`(?i)<script\b`)
	styleElement  = regexp.MustCompile(`(?is)<style\b[^>]*>(.*?)</style\s*>`)
	styleAttr     = regexp.MustCompile(`(?i)<[^>]*\sstyle\s*=`)
)

// LoadTemplate replaces the page of kind with the html/template in file.
// The file may use {{template "head" .}} (the built-in head: charset,
// viewport, no-referrer, icon, title and the module's style) or its own.
//
// What stays the module's: the scripts (the relay and start pages must
// render the module's script, {{.Script}} in one <script> element, and
// no other; the other pages none) and every security header. Checked here
// by rendering the page with sample data, so a template that does not
// parse, lacks what the script needs or adds a script stops Caddy from
// loading, naming the file (and, for a parse error, the line).
//
// Styles: <style> elements with fixed contents are admitted by their
// hashes, and stylesheets, images and fonts from the site itself ('self');
// style attributes are refused (the CSP would block them).
func (p *Pages) LoadTemplate(kind, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxTemplateBytes+1))
	if err != nil {
		return err
	}
	if len(raw) > maxTemplateBytes {
		return fmt.Errorf("%s: larger than %d KiB", file, maxTemplateBytes>>10)
	}
	t, err := template.New(file).ParseFS(pageFiles, "head.html")
	if err == nil {
		t, err = t.Parse(string(raw))
	}
	if err != nil {
		return err // "template: <file>:<line>: …"
	}
	csp, err := checkTemplate(kind, file, t)
	if err != nil {
		return err
	}
	pg := &page{t: t, csp: csp}
	switch kind {
	case "relay":
		p.relay = pg
	case "start":
		p.start = pg
	case ErrorPage:
		p.errors = pg
	case SignedOutPage:
		p.signedOut = pg
	case ForbiddenPage:
		p.forbidden = pg
	}
	return nil
}

// templateSample is data a page of some kind is rendered with at load,
// and what its output must then contain.
type templateSample struct {
	data pageData
	must []string
}

func samplesFor(kind string) (script string, samples []templateSample, err error) {
	msg := Message{Title: "Sample title", Text: "Sample text.", Code: "sample_code", Description: "Sample description", LinkHref: "/sample", LinkText: "Sample link"}
	switch kind {
	case "relay":
		return relayScript, []templateSample{
			{pageData{Message: Message{Title: "Signing in…"}}, []string{`id="status"`, `id="retry"`}},
			{pageData{Message: Message{Title: "Signing in…"}, Answer: `{"location":"/sample","state":"s"}`, Continue: "/sample"},
				[]string{`id="status"`, `id="retry"`, `id="answer"`, `data-answer="{&#34;location&#34;:&#34;/sample&#34;,&#34;state&#34;:&#34;s&#34;}"`}},
		}, nil
	case "start":
		next := "https://as.example/authorize?client_id=c&amp;state=s"
		return startScript, []templateSample{
			{pageData{Message: Message{Title: "Signing in…"}, Next: "https://as.example/authorize?client_id=c&state=s", ReturnTo: "/sample", KeepFragment: true},
				[]string{`id="next"`, `href="` + next + `"`, `data-return-to="/sample"`}},
			{pageData{Message: Message{Title: "Signing in…"}, Next: "https://as.example/authorize?client_id=c&state=s", ReturnTo: "/other"},
				[]string{`id="next"`, `data-return-to="/other"`, `data-keep-fragment="false"`}},
		}, nil
	case ErrorPage, ForbiddenPage:
		other := msg
		other.Title, other.Text, other.SignedInAs = "Other title", "Other text.", "someone@corp.example"
		return "", []templateSample{{pageData{Message: msg}, nil}, {pageData{Message: other}, nil}}, nil
	case SignedOutPage:
		ask := Message{Title: "Sign out?", Text: "Do you want to sign out of this site?", FormAction: "/oauth/logout", FormButton: "Sign out"}
		return "", []templateSample{
			{pageData{Message: Message{Title: "Signed out", Text: "You are signed out.", LinkHref: "/", LinkText: "Sign in again"}}, nil},
			{pageData{Message: ask}, []string{`<form`, `action="/oauth/logout"`}},
		}, nil
	}
	return "", nil, fmt.Errorf("unknown page %q; one of %s", kind, strings.Join(templateKinds, ", "))
}

// checkTemplate renders t with each sample for kind and returns the page's
// CSP: the built-in one, with the template's styles admitted.
func checkTemplate(kind, file string, t *template.Template) (string, error) {
	script, samples, err := samplesFor(kind)
	if err != nil {
		return "", err
	}
	var styles []string
	for i, sample := range samples {
		var out strings.Builder
		sample.data.Script = template.JS(script)
		if err := execute(&out, t, sample.data); err != nil {
			return "", err
		}
		html := out.String()
		if err := checkScripts(html, script); err != nil {
			return "", fmt.Errorf("%s: %w", file, err)
		}
		for _, must := range sample.must {
			if !strings.Contains(html, must) {
				return "", fmt.Errorf("%s: the %s page must render %s, as the built-in one does (its script or its form needs it)", file, kind, must)
			}
		}
		if styleAttr.MatchString(html) {
			return "", fmt.Errorf("%s: a style attribute: the page's CSP admits <style> elements and stylesheets from the site, not style attributes", file)
		}
		var these []string
		for _, m := range styleElement.FindAllStringSubmatch(html, -1) {
			these = append(these, cspHash(m[1]))
		}
		if i > 0 && !slices.Equal(these, styles) {
			return "", fmt.Errorf("%s: a <style> element's contents change with the page's data; styles must be fixed (the CSP admits them by hash)", file)
		}
		styles = these
	}
	base := map[string]string{"relay": relayCSP, "start": startCSP}[kind]
	if base == "" {
		base = messageCSP
	}
	csp := strings.Replace(base, "style-src "+styleHash, "style-src 'self' "+strings.Join(uniq(append([]string{styleHash}, styles...)), " "), 1)
	csp = strings.Replace(csp, "img-src data:", "img-src 'self' data:; font-src 'self'", 1)
	return csp, nil
}

// checkScripts: exactly the module's script (none when script is ""),
// inline, in one element without attributes.
func checkScripts(html, script string) error {
	all := anyScriptTag.FindAllStringIndex(html, -1)
	elements := scriptElement.FindAllStringSubmatch(html, -1)
	switch {
	case script == "" && len(all) > 0:
		return errors.New("a <script>: this page runs no script, and its CSP admits none")
	case script == "":
		return nil
	case len(all) != 1 || len(elements) != 1:
		return fmt.Errorf("%d <script> elements; the page must have exactly one: <script>{{.Script}}</script>", len(all))
	case strings.TrimSpace(elements[0][1]) != "" || elements[0][2] != script:
		return errors.New("the <script> element must be <script>{{.Script}}</script>: nothing else in it, no attributes")
	}
	return nil
}

func uniq(s []string) []string {
	out := s[:0:0]
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
