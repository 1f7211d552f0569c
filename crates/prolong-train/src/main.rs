//! `prolong-train`: train a stage recipe, or run a model forward on one packed sequence.

mod commands;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "prolong-train",
    version,
    about = "Llama long-context training on packed MDS shards (the ProLong recipe)",
    after_help = "Examples:\n  \
        prolong-train train --config pipelines/tiny-stage1.toml\n  \
        prolong-train train --config pipelines/tiny-stage1.toml --resume\n  \
        prolong-train train --config pipelines/stage1-64k.toml --out runs/stage1-64k\n  \
        prolong-train launch --nproc-per-node 2 -- ranks\n  \
        prolong-train forward --model fixtures/hf-llama/model \\\n      \
        --batch fixtures/hf-llama/reference.safetensors --out logits.safetensors"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run (or --resume) one training stage from a TOML recipe.
    #[command(after_help = "Examples:\n  \
        prolong-train train --config pipelines/tiny-stage1.toml\n  \
        prolong-train train --config pipelines/tiny-stage1.toml --resume   # after a crash or kill\n  \
        prolong-train train --config pipelines/stage2-512k.toml --out runs/s2 --quiet\n\n\
        Writes OUT/metrics.jsonl (one record per step), OUT/checkpoints/step-N/ every\n\
        checkpoint.every steps, OUT/final/ (HF weights + optimizer + loader state) and OUT/loss.svg.")]
    Train(commands::train::TrainArgs),
    /// Logits and loss of one packed sequence (input_ids, indices[, mask] in a safetensors file).
    #[command(after_help = "Example:\n  \
        prolong-train forward --model fixtures/hf-llama/model \\\n      \
        --batch fixtures/hf-llama/reference.safetensors --out logits.safetensors")]
    Forward(commands::forward::ForwardArgs),
    /// Start N local ranks of a prolong-train command (what `torchrun --nproc-per-node N` does).
    #[command(after_help = "Examples:\n  \
        prolong-train launch --nproc-per-node 4 -- train --config C      # 4 CPU ranks via mpirun\n  \
        prolong-train launch --nproc-per-node 8 --backend env -- ranks   # torchrun's environment\n\n\
        `train` on N ranks is data parallel with replicated weights (DDP): each rank trains its\n\
        share of every step and the gradients are summed over MPI (build with --features mpi).")]
    Launch(commands::launch::LaunchArgs),
    /// Per-rank memory, step FLOPs and bytes moved of a recipe on N GPUs; says whether it
    /// fits and which knob makes it fit.
    #[command(after_help = "Examples:\n  \
        prolong-train plan --config pipelines/stage1-64k.toml --gpus 8 --gpu-memory 80GB\n  \
        prolong-train plan --config pipelines/stage2-512k.toml --gpus 8 --sp 8\n  \
        prolong-train plan --config pipelines/stage1-64k.toml --model-config models/8b/config.json --json")]
    Plan(commands::plan::PlanArgs),
    /// Print this process's rank, world size and local rank as read from the launcher's
    /// environment (torchrun, mpirun, srun).
    Ranks,
}

fn main() {
    prolong_mds::closed_stdout::exit_quietly_on_closed_stdout();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => {
            commands::train::prepare(&args).and_then(|cfg| commands::train::main(args, cfg))
        }
        Command::Forward(args) => commands::forward::main(args),
        Command::Launch(args) => commands::launch::main(args),
        Command::Ranks => commands::launch::ranks(),
        Command::Plan(args) => commands::plan::main(args),
    };
    if let Err(e) = result {
        // The error and its context on one line (no message repeats its cause).
        eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
        std::process::exit(1);
    }
}
