//! Workspace tasks, run through the wrappers in `scripts/`.
//!
//! `idl [--check]`: builds the IDL of every program crate under `programs/`
//! exactly as `anchor idl build` does (the `idl-build` feature and the
//! `__anchor_private_print_idl` test, on the host toolchain, no SBF needed),
//! completes the `#[event_cpi]` accounts Anchor 1.2's builder leaves bare
//! (`event_cpi.rs`), and writes it pretty-printed to `idl/<program>.json`
//! beside its TypeScript type `idl/<program>.ts`, the file `anchor build`
//! writes to `target/types/` (`ts.rs`). With `--check` it writes nothing and
//! fails if a committed file differs from the freshly generated one, is
//! missing, or belongs to no program.

mod event_cpi;
mod ts;

use anchor_lang_idl::build::IdlBuilder;
use anyhow::{bail, Context, Result};
use std::{
    env, fs,
    path::{Path, PathBuf},
    process::ExitCode,
};

const USAGE: &str = "usage: xtask idl [--check]";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["idl"] => idl(false),
        ["idl", "--check"] => idl(true),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    // `cargo run` sets CARGO_MANIFEST_DIR at run time too; prefer it so a moved
    // checkout with a reused binary still points at the right place.
    let xtask_dir = env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    xtask_dir
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Program crates: every directory under `programs/` with a `Cargo.toml`, sorted.
fn program_dirs(root: &Path) -> Result<Vec<PathBuf>> {
    let programs = root.join("programs");
    let mut dirs = Vec::new();
    for entry in
        fs::read_dir(&programs).with_context(|| format!("reading {}", programs.display()))?
    {
        let path = entry?.path();
        if path.join("Cargo.toml").is_file() {
            dirs.push(path);
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// The nested `cargo test` must use the toolchain running us. anchor-lang-idl 0.1.4
/// mishandles `RUSTUP_TOOLCHAIN` (which rustup sets for everything `cargo run`
/// starts): it passes a literal `+{toolchain}` to cargo and may try
/// `rustup toolchain install`. Drop the variable and put this toolchain's `bin`
/// first on PATH instead.
fn pin_nested_cargo_to_current_toolchain() -> Result<()> {
    env::remove_var("RUSTUP_TOOLCHAIN");
    if let Some(bin) = env::var_os("CARGO")
        .map(PathBuf::from)
        .and_then(|cargo| cargo.parent().map(Path::to_path_buf))
    {
        let mut paths = vec![bin];
        paths.extend(env::split_paths(&env::var_os("PATH").unwrap_or_default()));
        env::set_var("PATH", env::join_paths(paths).context("building PATH")?);
    }
    Ok(())
}

fn idl(check: bool) -> Result<()> {
    let root = workspace_root();
    let out_dir = root.join("idl");
    pin_nested_cargo_to_current_toolchain()?;

    let mut expected = Vec::new();
    let mut stale = Vec::new();
    for program in program_dirs(&root)? {
        eprintln!("building IDL of {}", program.display());
        // Same settings as `anchor idl build` with a default Anchor.toml
        // (features.resolution = true, skip-lint = false, docs included).
        let mut idl = IdlBuilder::new()
            .program_path(program.clone())
            .resolution(true)
            .skip_lint(false)
            .no_docs(false)
            .cargo_args(vec!["--lib".into()])
            .build()
            .with_context(|| format!("building the IDL of {}", program.display()))?;
        event_cpi::complete_event_cpi_accounts(&mut idl);
        let mut json = serde_json::to_string_pretty(&idl)?;
        json.push('\n');
        let types = ts::idl_ts(&idl)?;

        for (extension, contents) in [("json", json), ("ts", types)] {
            let file = out_dir.join(format!("{}.{extension}", idl.metadata.name));
            let rel = relative(&root, &file);
            expected.push(file.clone());
            let current = fs::read_to_string(&file).ok();
            if current.as_deref() == Some(contents.as_str()) {
                eprintln!("{rel}: up to date");
                continue;
            }
            if check {
                match current {
                    None => stale.push(format!("{rel} is missing")),
                    Some(current) => stale.push(format!(
                        "{rel} is stale ({})",
                        first_difference(&current, &contents)
                    )),
                }
            } else {
                fs::create_dir_all(&out_dir)?;
                fs::write(&file, contents).with_context(|| format!("writing {rel}"))?;
                eprintln!("{rel}: written");
            }
        }
    }

    if let Ok(entries) = fs::read_dir(&out_dir) {
        for entry in entries {
            let path = entry?.path();
            let generated_kind = path
                .extension()
                .is_some_and(|ext| ext == "json" || ext == "ts");
            if generated_kind && !expected.contains(&path) {
                let rel = relative(&root, &path);
                stale.push(format!("{rel} belongs to no program under programs/"));
            }
        }
    }

    if !stale.is_empty() {
        for problem in &stale {
            eprintln!("  {problem}");
        }
        bail!("committed IDL does not match the program source; run `scripts/idl` and commit idl/");
    }
    Ok(())
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// "line N: committed `...` vs generated `...`" for the first line that differs.
fn first_difference(committed: &str, generated: &str) -> String {
    let (mut committed_lines, mut generated_lines) = (committed.lines(), generated.lines());
    let mut line = 0;
    loop {
        line += 1;
        match (committed_lines.next(), generated_lines.next()) {
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return "only trailing whitespace differs".into(),
            (a, b) => {
                return format!(
                    "first difference at line {line}: committed `{}`, generated `{}`",
                    a.map_or("<end of file>", str::trim),
                    b.map_or("<end of file>", str::trim)
                )
            }
        }
    }
}
