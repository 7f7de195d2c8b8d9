//! The README's module list matches the source tree: every file under src/ is listed, and every listed
//! file exists.
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

#[test]
fn readme_module_list_matches_the_tree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let listed: Vec<&str> = readme
        .lines()
        .filter(|l| l.starts_with("src/"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut tree = vec![];
    files(&root.join("src"), &mut tree);
    for path in &tree {
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            listed.contains(&rel.as_str()),
            "{rel} is not in README.md's module list"
        );
    }
    for rel in &listed {
        assert!(
            root.join(rel).is_file(),
            "README.md lists {rel}, which does not exist"
        );
    }
}
