//! The README's results table is the one `reproduce --readme-table` generates from the
//! committed `docs/results/cpu-results.json`, so the two cannot drift apart.

use std::path::Path;

use ganaug::experiment::report::{read_results, readme_table, replace_readme_table};

#[test]
fn the_readme_table_is_generated_from_the_committed_results() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let results = read_results(&root.join("docs/results/cpu-results.json")).expect("results");
    assert_eq!(results.schema_version, ganaug::experiment::SCHEMA_VERSION);
    assert_eq!(results.config.preset, "cpu");
    let commit = results.commit.as_deref().expect("the run names its commit");
    assert!(
        !commit.ends_with("-dirty"),
        "results of uncommitted code: {commit}"
    );
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let table = readme_table(&results);
    assert!(
        readme.contains(&table),
        "README.md's results table differs from docs/results/cpu-results.json: run \
         `reproduce --readme-table docs/results/cpu-results.json --update-readme README.md`"
    );
    assert_eq!(
        replace_readme_table(&readme, &table).as_deref(),
        Some(readme.as_str())
    );
}
