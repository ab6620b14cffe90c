package scripts_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// browser is what the tour's browser step needs of a person's browser: it
// keeps cookies, follows redirects, and submits a page's form the way its
// HTML says (hidden fields, checked boxes, the button pressed).
type browser struct {
	t  *testing.T
	hc *http.Client
}

// page is a loaded HTML page.
type page struct {
	url  *url.URL
	body string
	doc  *html.Node
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

func (b *browser) load(resp *http.Response, err error) *page {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	doc, err := html.Parse(strings.NewReader(string(raw)))
	if err != nil {
		b.t.Fatalf("%s: %v", resp.Request.URL, err)
	}
	return &page{url: resp.Request.URL, body: string(raw), doc: doc}
}

func (b *browser) open(u string) *page {
	b.t.Helper()
	return b.load(b.hc.Get(u))
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// submit fills the page's form with fill (by field name) and presses the
// submit button whose id is button, sending what a browser would send.
func (b *browser) submit(p *page, button string, fill map[string]string) *page {
	b.t.Helper()
	var form *html.Node
	var find func(*html.Node)
	find = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "form" && form == nil {
			form = n
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			find(c)
		}
	}
	find(p.doc)
	if form == nil {
		b.t.Fatalf("%s has no form:\n%.2000s", p.url, p.body)
	}
	values, pressed := url.Values{}, false
	var collect func(*html.Node)
	collect = func(n *html.Node) {
		if n.Type == html.ElementNode && (n.Data == "input" || n.Data == "button") {
			name, _ := attr(n, "name")
			value, _ := attr(n, "value")
			typ, _ := attr(n, "type")
			id, _ := attr(n, "id")
			_, checked := attr(n, "checked")
			switch {
			case name == "":
			case n.Data == "button" || typ == "submit":
				if id == button {
					values.Add(name, value)
					pressed = true
				}
			case typ == "checkbox" || typ == "radio":
				if checked {
					values.Add(name, value)
				}
			default:
				if v, ok := fill[name]; ok {
					value = v
				}
				values.Add(name, value)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			collect(c)
		}
	}
	collect(form)
	if !pressed {
		b.t.Fatalf("%s has no submit button #%s:\n%.2000s", p.url, button, p.body)
	}
	action, _ := attr(form, "action")
	target, err := p.url.Parse(action)
	if err != nil {
		b.t.Fatal(err)
	}
	if method, _ := attr(form, "method"); !strings.EqualFold(method, "post") {
		target.RawQuery = values.Encode()
		return b.open(target.String())
	}
	return b.load(b.hc.PostForm(target.String(), values))
}
