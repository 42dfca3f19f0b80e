//! The dashboards' files as the binaries embed them, read as text: nothing the pages'
//! Content-Security-Policy forbids, nothing from another origin, and each page within its
//! weight budget. (The pages themselves are exercised in a browser by `dashboard.rs`.)

use frp_admin::Dashboard;

/// The pages, exactly as the binaries embed and serve them.
const PAGES: [(&str, Dashboard); 2] = [
    ("frps", frps::admin::DASHBOARD),
    ("frpc", frpc::api::DASHBOARD),
];

/// What the Content-Security-Policy forbids is not in the files (inline script, inline event
/// handlers and style attributes, string evaluation, markup built from strings), nothing
/// is loaded from elsewhere, and each page stays under its weight budget.
#[test]
fn the_pages_keep_to_their_policy_and_weight() {
    const BUDGET: usize = 64 * 1024;
    for (page, dashboard) in PAGES {
        for (path, _, bytes) in dashboard.files() {
            let text = std::str::from_utf8(bytes).expect("text asset");
            let name = format!("{page} {path}");
            let banned = [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                " style=\"",
                " onclick",
                " onload",
                " onerror",
                " onsubmit",
                "javascript:",
                "@import",
                "url(http",
            ];
            for b in banned {
                assert!(!text.contains(b), "{name} contains {b:?}");
            }
            for (i, _) in text.match_indices("<script") {
                let tag = &text[i..i + text[i..].find('>').expect("tag ends")];
                assert!(
                    tag.contains("src=\"/ui/"),
                    "{name}: inline or foreign script {tag}"
                );
            }
            let foreign = text.match_indices("http").filter(|(i, _)| {
                let rest = &text[*i..];
                rest.starts_with("http://") || rest.starts_with("https://")
            });
            for (i, _) in foreign {
                let rest = &text[i..];
                let allowed = rest.starts_with("http://www.w3.org/2000/svg")
                    || rest.starts_with("http://user:pass@host/");
                assert!(
                    allowed,
                    "{name} names another origin: {}",
                    &rest[..40.min(rest.len())]
                );
            }
        }
        let weight = dashboard.weight();
        assert!(weight <= BUDGET, "the {page} page weighs {weight} bytes");
    }
}
