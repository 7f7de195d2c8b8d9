//! The documentation holds to the tree: docs/development.md's module list names every file under src/ and
//! nothing else; every relative link in README.md and docs/*.md resolves (file, and heading anchor where
//! one is given); the README stays a front page.
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn module_list_matches_the_tree() {
    let page = std::fs::read_to_string(root().join("docs/development.md")).unwrap();
    let listed: Vec<&str> = page
        .lines()
        .filter(|l| l.starts_with("src/") || l.starts_with("crates/"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut tree = vec![];
    for dir in ["src", "crates/core/src", "crates/lab/src"] {
        files(&root().join(dir), &mut tree);
    }
    for path in &tree {
        let rel = path.strip_prefix(root()).unwrap().to_string_lossy();
        assert!(
            listed.contains(&rel.as_ref()),
            "{rel} is not in docs/development.md's module list"
        );
    }
    for rel in &listed {
        assert!(
            root().join(rel).is_file(),
            "docs/development.md lists {rel}, which does not exist"
        );
    }
}

/// GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The `](target)` links of a Markdown text, outside code blocks.
fn links(text: &str) -> Vec<String> {
    let mut out = vec![];
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn every_relative_link_resolves() {
    let mut pages = vec![root().join("README.md")];
    files(&root().join("docs"), &mut pages);
    pages.retain(|p| p.extension().is_some_and(|e| e == "md"));
    assert!(pages.len() >= 8, "README and the docs pages: {pages:?}");
    let mut checked = 0;
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        for link in links(&text) {
            if link.starts_with("http://") || link.starts_with("https://") {
                continue;
            }
            let (file, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let target = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            assert!(
                target.exists(),
                "{}: link {link} points at {}, which does not exist",
                page.display(),
                target.display()
            );
            if !fragment.is_empty() && target.extension().is_some_and(|e| e == "md") {
                let headings: Vec<String> = std::fs::read_to_string(&target)
                    .unwrap()
                    .lines()
                    .filter(|l| l.starts_with('#'))
                    .map(|l| anchor(l.trim_start_matches('#')))
                    .collect();
                assert!(
                    headings.iter().any(|h| h == fragment),
                    "{}: link {link}: no heading #{fragment} in {}",
                    page.display(),
                    target.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} links found");
}

#[test]
fn readme_is_a_front_page() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(readme.lines().count() <= 200, "README.md over 200 lines");
    let quick = readme
        .split("## Quick start")
        .nth(1)
        .expect("a Quick start heading");
    for command in ["scripts/lenet5 train configs/default.yaml", "scripts/test"] {
        assert!(quick.contains(command), "Quick start lacks `{command}`");
    }
}
