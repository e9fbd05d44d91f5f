//! The configuration is documented once, in `VARIABLES`: the README's table
//! must list exactly those variables, in order, with the same defaults, and
//! every `HOOKFLEET_*` name the compose files and scripts mention must be one
//! the binaries read.

use std::path::PathBuf;

use hookfleet_common::config::VARIABLES;

fn repo_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// Every `HOOKFLEET_…` name in a text.
fn names_in(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("HOOKFLEET_") {
        let tail = &rest[at..];
        let len = tail
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..len].trim_end_matches('_').to_string());
        rest = &tail[len..];
    }
    names
}

#[test]
fn the_readme_table_is_the_config() {
    let readme = repo_file("README.md");
    let rows: Vec<(String, String)> = readme
        .lines()
        .filter(|line| line.starts_with("| `HOOKFLEET_"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            (
                cells[1].trim_matches('`').to_string(),
                cells[2].trim_matches('`').to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = VARIABLES
        .iter()
        .map(|(name, default, _)| (name.to_string(), default.to_string()))
        .collect();
    assert_eq!(
        rows, expected,
        "README.md's configuration table differs from VARIABLES"
    );
}

#[test]
fn deployment_files_only_set_variables_that_exist() {
    let known: Vec<&str> = VARIABLES.iter().map(|(name, _, _)| *name).collect();
    // Names the scripts and tests use for themselves, not for the binaries.
    let own = [
        "HOOKFLEET_TEST",
        "HOOKFLEET_TEST_SKIP_LINT",
        "HOOKFLEET_TEST_PYTHON",
        "HOOKFLEET_TEST_REDIS_URL",
        "HOOKFLEET_TEST_REDIS_SERVER",
        "HOOKFLEET_TEST_LOG",
    ];
    for file in ["docker-compose.yml", ".env.example", "Dockerfile"] {
        for name in names_in(&repo_file(file)) {
            assert!(
                known.contains(&name.as_str()) || own.contains(&name.as_str()),
                "{file} mentions {name}, which no binary reads"
            );
        }
    }
}
