//! `workbench tag`, `untag`, `note`: a user's labels on runs and sweeps.

use anyhow::Result;

use qbheat_workbench::store::tags::Target;
use qbheat_workbench::store::Store;

use super::{DbArg, TagArgs};

/// The full ids of `targets` (run ids or unique prefixes; sweep names that must exist).
fn resolve(store: &Store, targets: &[String], sweep: bool) -> Result<Vec<String>> {
    targets
        .iter()
        .map(|t| {
            if sweep {
                Ok(store.sweep(t)?.name)
            } else {
                Ok(store.run(t)?.id)
            }
        })
        .collect()
}

/// `tag` (`add`) or `untag` the targets in `args[..n-1]` with the tag `args[n-1]`.
pub fn tag(a: &TagArgs, add: bool) -> Result<()> {
    let (db, sweep) = (&a.db, a.sweep);
    let Some((tag, targets)) = a.args.split_last() else {
        anyhow::bail!("name the runs and the tag");
    };
    let store = Store::open_existing(db.locator())?;
    let ids = resolve(&store, targets, sweep)?;
    let target = if sweep { Target::Sweep } else { Target::Run };
    let what = if sweep { "sweeps" } else { "runs" };
    if add {
        let n = store.tag(target, &ids, tag)?;
        println!("tagged {} {what} with {tag} ({n} newly)", ids.len());
    } else {
        let n = store.untag(target, &ids, tag)?;
        println!("removed {tag} from {n} of {} {what}", ids.len());
    }
    Ok(())
}

pub fn note(db: &DbArg, target: &str, text: &str, sweep: bool) -> Result<()> {
    let store = Store::open_existing(db.locator())?;
    let id = resolve(&store, &[target.to_string()], sweep)?.remove(0);
    store.add_note(if sweep { Target::Sweep } else { Target::Run }, &id, text)?;
    println!("noted on {id}");
    Ok(())
}
