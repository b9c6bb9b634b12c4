"""
Exact path and solution metrics on the toy tasks: how a policy spreads its probability over the
correct derivations of a prompt, and over its structurally different solutions.

A toy prompt x has a finite set C(x) of correct completions, one per distinct order of its
numbers (task.toy_derivations: at most 5! = 120), each followed by EOS. Their probabilities are
computed exactly, by teacher forcing at temperature 1 with no top-k or top-p
(sample.token_logprobs):

    log pi(y|x) = sum_t log pi(y_t | x, y_<t)        over y's tokens, EOS included

Per prompt, with q the policy renormalised over C(x):

    mass      = sum_{y in C(x)} pi(y|x)               the chance of a sample being one of C(x)
    q(y)      = pi(y|x) / mass
    effective = exp( -sum_y q(y) log q(y) )           the number of equally likely paths that
                                                      would have the same entropy
    top_share = max_y q(y)
    kl_ref    = sum_y q(y) log( q(y) / q_ref(y) )     q_ref: the same for pi_ref
    count     = |C(x)|

averaged over the prompts, as paths_mass, paths_effective, paths_top_share, paths_kl_ref and
paths_count. Why these: FlowRL's target p* = pi_ref exp(beta r_hat) / Z multiplies all the
correct paths of a prompt by one factor, so under p* q equals q_ref (kl_ref 0, effective that of
pi_ref; with token means in delta, up to the small length tilt the README derives), while a
reward maximiser is free to pile the mass onto a few paths (top_share and effective toward 1).
mass counts only the derivations without a slip: a sample whose final answer is right after a
wrong partial sum is rewarded but is not in C(x).

On toy Countdown (tasks/countdown_toy.py) derivations group into solutions (expressions equal
up to the order of a sum's or product's operands); a solution's probability is the sum of its
derivations', p_s = sum_{y in s} pi(y|x), and solution_metrics reports the same five figures over
solutions (solutions_mass, _effective, _top_share, _kl_ref, _count). Both tasks report, exactly,

    pass_exact_at_k = mean over prompts of 1 - (1 - mass)^k       a correct sample among k
    distinct_at_k   = mean over prompts of sum_s 1 - (1 - p_s)^k  distinct solutions among k

for k = 1, 4, 16, 64, 256 (on the sums every path is its own solution). These are what k samples
would give in expectation, with no sampling noise: pass@k at large k against pi_ref's says
whether RL lost solutions that pi_ref could find.

In a training script, the reference's log-probs are computed once and reused:

    logp_ref = path_logprobs(ref_model, tok, problems, encode, eos_id, pad_id, device)
    metrics = path_metrics(path_logprobs(model, tok, problems, encode, eos_id, pad_id, device),
                           logp_ref)
"""
import torch

from sample import rollout_of, token_logprobs
from tasks.sums import toy_derivations

METRICS = ("paths_mass", "paths_effective", "paths_top_share", "paths_kl_ref", "paths_count")
KS = (1, 4, 16, 64, 256)  # the k of pass_exact_at_k and distinct_at_k


@torch.inference_mode()
def path_logprobs(model, tok, problems, encode, eos_id, pad_id, device, batch=256, derivations=None):
    """log pi(y|x) for every y in C(x), for each toy problem (question, answer) in problems.

    encode(question) gives the prompt's token ids (the training script's prompt template);
    eos_id is one token id; derivations(problem) lists C(x) (by default the sums'). All (prompt,
    derivation) pairs are teacher-forced together, batch rows per forward pass, longest first so
    that a pass pads little. Run it outside autocast: these are exact probabilities, in float32
    per token, summed in float64.

    Returns a list with one float64 tensor (|C(x)|,) per problem, on the CPU, in the order of
    derivations(problem).
    """
    derivations = derivations or (lambda problem: toy_derivations(problem[0]))
    pairs = []  # (prompt ids, response ids + EOS), problem by problem
    counts = []  # |C(x)| of each problem
    for problem in problems:
        prompt, texts = encode(problem[0]), derivations(problem)
        pairs += [(prompt, tok.encode(text).ids + [eos_id]) for text in texts]
        counts.append(len(texts))
    order = sorted(range(len(pairs)), key=lambda i: -len(pairs[i][0]) - len(pairs[i][1]))
    logp = torch.empty(len(pairs), dtype=torch.float64)
    for start in range(0, len(pairs), batch):
        rows = order[start:start + batch]
        rollout = rollout_of([pairs[i][0] for i in rows], [pairs[i][1] for i in rows],
                             pad_id, eos_id, device)
        logp_t = token_logprobs(model, rollout).logp  # (b, N) float32, 0 off the response mask
        logp[rows] = logp_t.double().sum(dim=1).cpu()  # (b,) log pi(y|x)
    return list(logp.split(counts))


def path_metrics(logp, logp_ref):
    """The five path metrics (module docstring), averaged over prompts, as Python floats.

    logp, logp_ref: lists of per-prompt tensors (|C(x)|,) of log pi(y|x) and log pi_ref(y|x)
    over the same paths in the same order (path_logprobs). Computed in float64.
    """
    if len(logp) != len(logp_ref) or not logp:
        raise ValueError(f"path_metrics: need the same number of prompts (at least one) for the "
                         f"policy and the reference, got {len(logp)} and {len(logp_ref)}")
    per_prompt = []  # one row of the five metrics per prompt
    for lp, lp_ref in zip(logp, logp_ref):
        if lp.shape != lp_ref.shape:
            raise ValueError(f"path_metrics: a prompt has {lp.numel()} paths under the policy "
                             f"and {lp_ref.numel()} under the reference")
        log_mass = lp.double().logsumexp(dim=0)  # log sum_y pi(y|x)
        log_q = lp.double() - log_mass  # (|C|,) log q(y)
        log_q_ref = lp_ref.double() - lp_ref.double().logsumexp(dim=0)  # (|C|,) log q_ref(y)
        q = log_q.exp()  # (|C|,)
        entropy = -(q * log_q).sum()
        kl_ref = (q * (log_q - log_q_ref)).sum()
        per_prompt.append([log_mass.exp(), entropy.exp(), q.max(), kl_ref, len(q)])
    means = torch.tensor(per_prompt, dtype=torch.float64).mean(dim=0)  # (5,)
    return dict(zip(METRICS, means.tolist()))


def toy_metrics(task, problems, logp, logp_ref):
    """A toy task's exact metrics: over solutions when it groups derivations into them (task.solutions:
    Countdown), else over paths (the sums), with pass_exact_at_k and distinct_at_k either way."""
    if hasattr(task, "solutions"):
        return solution_metrics(logp, logp_ref, solution_groups(task, problems))
    return {**path_metrics(logp, logp_ref), **pass_metrics(logp)}


def solution_groups(task, problems):
    """The solution index of each derivation (task.derivations' order), problem by problem."""
    return [torch.tensor(task.solutions(p)[1]) for p in problems]


def solution_logprobs(logp, groups):
    """log p_s per problem: logp as from path_logprobs, groups[i] (|C(x)|,) the solution index
    (0 .. S-1) of each derivation -> a list of float64 tensors (S,), summed in log space."""
    return [torch.stack([lp.double()[g == s].logsumexp(0) for s in range(int(g.max()) + 1)])
            for lp, g in zip(logp, groups)]


def solution_metrics(logp, logp_ref, groups):
    """The five metrics over solutions (module docstring), with pass_exact_at_k and
    distinct_at_k over solutions, averaged over prompts."""
    log_ps = solution_logprobs(logp, groups)
    paths = path_metrics(log_ps, solution_logprobs(logp_ref, groups))
    return {**{k.replace("paths_", "solutions_"): v for k, v in paths.items()}, **pass_metrics(log_ps)}


def pass_metrics(logp, ks=KS):
    """pass_exact_at_k and distinct_at_k, k in ks, from each prompt's log p_s (tensors (S,): paths,
    or solutions): 1 - (1 - p)^k as -expm1(k log1p(-p)), exact for the tiny p of a rare solution."""
    probs, out = [lp.double().exp() for lp in logp], {}
    for k in ks:
        at_k = [(-torch.expm1(k * torch.log1p(-p.sum().clamp(max=1)))).item() for p in probs]
        out[f"pass_exact_at_{k}"] = sum(at_k) / len(at_k)
        out[f"distinct_at_{k}"] = sum((-torch.expm1(k * torch.log1p(-p))).sum().item() for p in probs) / len(probs)
    return out


if __name__ == "__main__":
    # A random (untrained) toy model spreads its probability over the whole vocabulary: the
    # correct paths get almost none of it, but q is still a distribution over them.
    from model import ModelConfig, Transformer
    from tasks.sums import EOS, PAD, TOY_MODEL, ToyTask, train_toy_tokenizer
    torch.manual_seed(0)
    tok = train_toy_tokenizer()
    model = Transformer(ModelConfig(vocab_size=tok.get_vocab_size(), eos_token_id=tok.token_to_id(EOS),
                                    **TOY_MODEL)).eval()
    problems = ToyTask(4).eval_set
    logp = path_logprobs(model, tok, problems, lambda q: tok.encode(q + "\n").ids,
                         tok.token_to_id(EOS), tok.token_to_id(PAD), torch.device("cpu"))
    print(problems)
    print(path_metrics(logp, logp))
