import re
def test_smoke(app, browser):
    browser.login("mgp.admin")
    r = browser.get("/metropole/mgp/tableau-de-bord", follow_redirects=True)
    url = re.findall(r'href="(/metropole/mgp/tableau-de-bord/\d+)"', r.text)[0]
    r = browser.get(url)
    assert r.status_code == 200, r.text[:3000]
    for url in re.findall(r'hx-get="([^"]+)"', r.get_data(as_text=True)):
        p = browser.get(url.replace("&amp;","&"), headers={"HX-Request": "true"})
        assert p.status_code == 200, (url, p.text[:3000])
        for u in re.findall(r'href="([^"]+\.(?:csv|xlsx))"', p.get_data(as_text=True)):
            assert browser.get(u).status_code == 200
    for link in re.findall(r'href="(/metropole/mgp/(?:rapports|suivi)/\d+)"', r.text):
        q = browser.get(link); assert q.status_code == 200, q.text[:3000]
