//! The dashboards' files as the binaries embed them, read as text: nothing the pages'
//! Content-Security-Policy forbids, nothing from another origin, and each page within its
//! weight budget. (The pages themselves are exercised in a browser by `dashboard.rs`.)

/// The pages' files, as the binaries embed them: (page, files).
fn pages() -> Vec<(&'static str, Vec<std::path::PathBuf>)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let shared = [
        "admin/assets/common.js",
        "admin/assets/style.css",
        "admin/assets/favicon.svg",
    ];
    ["frps", "frpc"]
        .into_iter()
        .map(|p| {
            let own = [
                format!("{p}/assets/index.html"),
                format!("{p}/assets/app.js"),
            ];
            let all = own
                .iter()
                .map(String::as_str)
                .chain(shared)
                .map(|f| root.join(f));
            (p, all.collect())
        })
        .collect()
}

/// What the Content-Security-Policy forbids is not in the files (inline script, inline event
/// handlers and style attributes, string evaluation, markup built from strings), nothing
/// is loaded from elsewhere, and each page stays under its weight budget.
#[test]
fn the_pages_keep_to_their_policy_and_weight() {
    const BUDGET: usize = 64 * 1024;
    for (page, files) in pages() {
        let mut weight = 0;
        for path in files {
            let text = std::fs::read_to_string(&path).expect("asset");
            weight += text.len();
            let name = path.display();
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
        assert!(weight <= BUDGET, "the {page} page weighs {weight} bytes");
    }
}
