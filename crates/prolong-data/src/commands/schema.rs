/// Print the recipe's JSON schema, generated from the stages' options types.
///
/// schemas/recipe.schema.json is this output (a test checks it); after
/// changing a stage's options, regenerate it:
///   prolong-data schema > schemas/recipe.schema.json
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {}

pub fn run(_: Args) -> anyhow::Result<()> {
    print!("{}", prolong_data::recipe::recipe_schema_text()?);
    Ok(())
}
