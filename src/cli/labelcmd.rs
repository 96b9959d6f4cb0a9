//! `label serve`, `label pairs`: people label preference pairs in a browser (crate `rebel-label`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use rebel_agents::active::{PersonTeacher, RoundQuery};
use rebel_agents::io::fnv1a_hex;
use rebel_agents::policy::{GaussianPolicy, PolicyConfig};
use rebel_agents::preferences::query::select;
use rebel_agents::preferences::{PolicySource, PreferenceDataset};
use rebel_agents::seeding::{stream, Domain};
use rebel_label::{make_pairs, pairs_path, Book, PairFile, PairSpec, ServeOptions};

use super::{env_config, EnvArgs};

/// `label …`
#[derive(Subcommand, Debug, Clone)]
pub enum LabelCommand {
    /// Serve the labelling page: answers go, crash-safely, into a preference dataset that `rm train` reads.
    Serve(ServeArgs),
    /// Make a pair file (pieces of policy rollouts with their body poses) to label later with `serve --from-pairs`.
    Pairs(PairsArgs),
}

/// Where the pairs come from.
#[derive(Args, Debug, Clone)]
pub struct SourceArgs {
    /// A checkpoint written by `train` (its policy makes the pieces), or `random` for a freshly initialised policy.
    #[arg(long)]
    pub policy: Option<String>,
    /// Number of pairs.
    #[arg(long, default_value_t = 100)]
    pub pairs: usize,
    /// Piece length in steps.
    #[arg(long, default_value_t = 50)]
    pub segment_len: usize,
    /// Both pieces of a pair start from the same simulator state.
    #[arg(long)]
    pub same_start: bool,
    /// Seed of the pieces (episode seeds, actions, pairing).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// `label serve`
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Label the pairs of this pair file (written by `label pairs`, or an earlier session's OUT.pairs.json)
    /// instead of making new ones with --policy.
    #[arg(long, value_name = "FILE", conflicts_with = "policy")]
    pub from_pairs: Option<PathBuf>,
    /// The preference dataset to write (.safetensors); OUT.journal and OUT.pairs.json are kept next to it, and
    /// a later `serve` with the same --out resumes the session.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub page: PageArgs,
}

/// How the labelling page is served (`label serve`, and `experiment --teacher page`).
#[derive(Args, Debug, Clone)]
pub struct PageArgs {
    /// Address to listen on. Anything but loopback needs --token.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0 = any free port; the URL is printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Every request must carry ?token=TOKEN (required for a non-loopback --host).
    #[arg(long)]
    pub token: Option<String>,
    /// Seconds a served pair stays reserved for its labeller before it may be given to another.
    #[arg(long, default_value_t = 600)]
    pub lease_secs: u64,
    /// For tests: serve GET /api/test/returns, the true return of every piece. Never use it with people.
    #[arg(long)]
    pub test_hook: bool,
}

impl Default for PageArgs {
    fn default() -> Self {
        PageArgs { host: "127.0.0.1".into(), port: 8080, token: None, lease_secs: 600, test_hook: false }
    }
}

impl PageArgs {
    /// The server options, checked (token, host, lease).
    pub fn options(&self) -> Result<ServeOptions> {
        let opts = ServeOptions { host: self.host.clone(), port: self.port, token: self.token.clone(), test_hook: self.test_hook };
        rebel_label::check_options(&opts)?;
        if self.lease_secs == 0 {
            bail!("--lease-secs must be ≥ 1");
        }
        Ok(opts)
    }
}

/// A person answering an experiment's rounds on the labelling page (`experiment --teacher page`): each round's
/// pool is made by `label pairs`' generator (pieces with their body poses) from the round's policy and seed,
/// ranked by the round's mode, and its top `K` pairs are served until every one is answered. The session lives
/// beside the round's dataset (`round{r}/prefs.safetensors.pairs.json` and `.journal`), so a killed experiment
/// rerun with the same command continues the round with every answer given before.
pub struct PageTeacher {
    pub opts: ServeOptions,
    pub lease: Duration,
    pub env_id: String,
    pub env_config: rebel_envs::EnvConfig,
}

impl PageTeacher {
    /// The round's session: opened from its pair file when there is one (it must hold the pairs this round asks
    /// about), else made when `make` (else `None`).
    fn session(&self, q: &RoundQuery<'_>, make: bool) -> Result<Option<Book>> {
        let session = pairs_path(&q.dataset);
        if session.exists() {
            let f = PairFile::load(&session)?;
            if f.policy != q.source || f.seed != q.seed || f.segment_len != q.segment_len || f.same_start != q.same_start
                || f.pairs.len() != q.labels || f.env_id != self.env_id
            {
                bail!(
                    "{} holds a labelling session of other pairs than round {} asks about now (policy {}, seed {}, \
                     {} pairs of {} steps on {}): move {}* away to ask again, or use a new --out",
                    session.display(),
                    q.round,
                    q.source.path,
                    q.seed,
                    q.labels,
                    q.segment_len,
                    self.env_id,
                    q.dataset.display()
                );
            }
            return Ok(Some(Book::open(f, &q.dataset, self.lease)?));
        }
        if !make {
            return Ok(None);
        }
        eprintln!(
            "round {}: making {} candidate pairs ({}-step pieces) and ranking them by {} ...",
            q.round,
            q.pool,
            q.segment_len,
            q.mode.name()
        );
        let mut env = rebel_envs::make(&self.env_id, &self.env_config)?;
        let spec = PairSpec { pairs: q.pool, segment_len: q.segment_len, same_start: q.same_start, seed: q.seed };
        let mut f = make_pairs(env.as_mut(), q.policy, q.source.clone(), &spec)?;
        let segments: Vec<_> = f.pairs.iter().enumerate().map(|(i, c)| (c.a.segment(i), c.b.segment(i))).collect();
        let order = select(q.mode, q.model, &segments, &mut stream(q.seed, Domain::Preferences, 3));
        let mut slots: Vec<_> = std::mem::take(&mut f.pairs).into_iter().map(Some).collect();
        f.pairs = order.into_iter().filter_map(|i| slots[i].take()).take(q.labels).collect();
        f.save(&session)?;
        // read back, as `label serve` does, so that a resumed session sees exactly the same pairs
        Ok(Some(Book::open(PairFile::load(&session)?, &q.dataset, self.lease)?))
    }
}

fn no_label(q: &RoundQuery<'_>) -> String {
    format!(
        "round {}: every pair was answered \"can't tell\", so the round has no label: move {}* away and run the \
         same command again to be asked about new pairs",
        q.round,
        q.dataset.display()
    )
}

impl PersonTeacher for PageTeacher {
    fn answered(&mut self, q: &RoundQuery<'_>) -> std::result::Result<Option<PreferenceDataset>, String> {
        match self.session(q, false).map_err(|e| format!("{e:#}"))? {
            Some(book) if book.counts().left == 0 => book.dataset().map(Some).ok_or_else(|| no_label(q)),
            _ => Ok(None),
        }
    }

    fn ask(&mut self, q: &RoundQuery<'_>) -> std::result::Result<PreferenceDataset, String> {
        let book = self.session(q, true).map_err(|e| format!("{e:#}"))?.expect("made");
        let c = book.counts();
        eprintln!(
            "round {}: label the {} pairs left of {} on the page (the round ends with the last answer; keep the page \
             open on a fixed --port and it follows to the next round)",
            q.round, c.left, c.total
        );
        rebel_label::serve_until_answered(book, &self.opts).map_err(|e| format!("{e:#}"))?.ok_or_else(|| no_label(q))
    }
}

/// `label pairs`
#[derive(Args, Debug, Clone)]
pub struct PairsArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output pair file (.json).
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `label …`.
pub fn label_cmd(env: &EnvArgs, cmd: &LabelCommand) -> Result<()> {
    match cmd {
        LabelCommand::Serve(a) => serve_cmd(env, a),
        LabelCommand::Pairs(a) => {
            let Some(policy) = &a.source.policy else { bail!("--policy is required: a checkpoint, or `random`") };
            let t0 = std::time::Instant::now();
            let f = generate(env, policy, &a.source)?;
            f.save(&a.out)?;
            println!(
                "{} pairs of {}-step pieces of {} on {} → {} in {:.1} s",
                f.pairs.len(),
                f.segment_len,
                f.policy.path,
                f.env_id,
                a.out.display(),
                t0.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}

fn generate(env: &EnvArgs, policy: &str, s: &SourceArgs) -> Result<PairFile> {
    tch::set_num_threads(1);
    let mut e = rebel_envs::make(&env.env, &env_config(env)?)?;
    let (od, ad) = (e.observation_space().dim(), e.action_space().dim());
    let (p, source) = if policy == "random" {
        let p = GaussianPolicy::new(PolicyConfig::new(od, ad), tch::Device::Cpu, tch::Kind::Float, s.seed);
        (p, PolicySource { path: format!("random:{}", s.seed), hash: String::new() })
    } else {
        let path = Path::new(policy);
        let bytes = std::fs::read(path).with_context(|| format!("cannot read policy checkpoint {}", path.display()))?;
        let (p, meta) = rebel_agents::eval::load_policy_and_meta(path, tch::Device::Cpu)?;
        super::note_other_options(env, &meta, path)?;
        (p, PolicySource { path: policy.to_string(), hash: fnv1a_hex(&bytes) })
    };
    make_pairs(
        &mut e,
        &p,
        source,
        &PairSpec { pairs: s.pairs, segment_len: s.segment_len, same_start: s.same_start, seed: s.seed },
    )
}

fn serve_cmd(env: &EnvArgs, a: &ServeArgs) -> Result<()> {
    let opts = a.page.options()?;
    let session = pairs_path(&a.out);
    let pairs = if session.exists() {
        // resume: the session's own pairs, whatever --policy says
        let f = PairFile::load(&session)?;
        if let Some(from) = &a.from_pairs {
            if PairFile::load(from)?.fingerprint() != f.fingerprint() {
                bail!(
                    "{} already belongs to a session with other pairs ({}): use another --out to label {}",
                    a.out.display(),
                    session.display(),
                    from.display()
                );
            }
        }
        println!("resuming the session of {} ({} pairs)", session.display(), f.pairs.len());
        f
    } else {
        let f = match (&a.from_pairs, &a.source.policy) {
            (Some(from), _) => PairFile::load(from)?,
            (None, Some(policy)) => generate(env, policy, &a.source)?,
            (None, None) => bail!("give --policy CKPT (or `random`) to make pairs, or --from-pairs FILE"),
        };
        if f.env_id != env.env {
            eprintln!("note: the pairs are from {}, --env is {} (the pairs' environment is used)", f.env_id, env.env);
        }
        f.save(&session)?;
        // the session works on the pairs as read back from its file (JSON float parsing may differ from the
        // generated values in the last bit), so that a resumed session sees exactly the same pairs
        PairFile::load(&session)?
    };
    let book = Book::open(pairs, &a.out, Duration::from_secs(a.page.lease_secs))?;
    rebel_label::serve(book, &opts)
}
