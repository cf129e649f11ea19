/* bnlab explorer — Every visible string, in English and Chinese, under the same keys.
 *
 * t(key, params) picks the page's language (state.lang); an entry is a string or a function of
 * the params.  Text between backticks is code: rich() draws it as <code>, never translated.
 * The Chinese follows the textbook's terms (《动手学深度学习》): 批量归一化, 层归一化, 实例归一化,
 * 组归一化, 小批量, 均值, 方差, 拉伸参数 γ, 偏移参数 β, 移动平均, 训练模式 / 预测模式, 通道, 样本. */
import { state } from "./state.js";

/** "1 group", "2 groups": a count and its noun, singular for one. */
const en1 = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

const EN = {
  "doc.title": "bnlab — batch normalization explorer",
  "title.long": "batch normalization",
  "title.explorer": "explorer",
  "tab.explorer": "explorer",
  "tab.training": "training",
  "lang.other": "中文",
  "lang.other.title": "显示中文",
  "aria.settings": "settings",
  "aria.steps": "steps",
  "grp.tensor": "1 · input tensor",
  "layout": "layout",
  "layout.conv": "convolutional (N, C, H, W)",
  "layout.fc": "fully connected (N, F)",
  "seed": "seed",
  "edit": "edit values",
  "edit.back": "back to seed",
  "edit.title": "type the input values yourself instead of torch.rand",
  "seed.hint": "x = `torch.rand(shape)` after `torch.manual_seed(seed)`",
  "seed.hint.typed": "x = the values you type into the input cells",
  "grp.norm": "2 · normalization",
  "norm": "norm",
  "norm.batch": "batch",
  "norm.layer": "layer",
  "norm.instance": "instance",
  "norm.group": "group",
  "groups": "groups G",
  "groups.title": "G must divide C",
  "groups.layer": "1 (layer)",
  "groups.instance": (p) => `${p.d} (instance)`,
  "groups.feature": (p) => `${p.d} (1 feature each)`,
  "group.note": (p) =>
    `${p.C} = ${p.wider} now (it was ${p.c}): with ${en1(p.c, p.fc ? "feature" : "channel")} every G is ` +
    `layer norm (G = 1) or ${p.fc ? "one feature a group" : "instance norm"} (G = ${p.c}).`,
  "mode": "mode",
  "mode.train": "train",
  "mode.eval": "eval",
  "momentum": "momentum",
  "grp.channels": "3 · per channel",
  "chan.channel": "channel",
  "chan.feature": "feature",
  "chan.gamma": "γ (scale)",
  "chan.beta": "β (shift)",
  "run.inputs": "running statistics used in eval",
  "run.mean": "running mean",
  "run.var": "running var",
  "chan.hint.train": "γ and β are learned per channel: y = γ·x̂ + β.",
  "chan.hint.eval":
    "eval mode: the running mean and variance replace the batch's μ and σ². Feeding batches (right) updates them.",
  "chan.hint.layer":
    "Here γ and β are per channel, as in the steps. `torch.nn.LayerNorm` learns them per element of its normalized shape (C, H, W) instead.",
  "norm.hint.conv.batch": "one μ, σ² per channel, over the whole batch (N, H, W)",
  "norm.hint.conv.layer": "one μ, σ² per sample, over (C, H, W)",
  "norm.hint.conv.instance": "one μ, σ² per sample and channel, over (H, W)",
  "norm.hint.conv.group": "one μ, σ² per sample and group of C/G channels",
  "norm.hint.fc.batch": "one μ, σ² per feature, over the batch (N)",
  "norm.hint.fc.layer": "one μ, σ² per sample, over its features (F)",
  "norm.hint.fc.instance": "instance norm needs (N, C, H, W)",
  "norm.hint.fc.group": "one μ, σ² per sample and group of F/G features",
  "reset": "source example",
  "reset.title": "back to the blog post's example",
  "loading": "loading…",
  // the step-through
  "stepper.start": "step through",
  "stepper.stop": "stop stepping",
  "stepper.prev": "← previous",
  "stepper.next": "next →",
  "stepper.of": (p) => `step ${p.k} of ${p.n}`,
  "stepper.keys": "keys ← and →; `Tab` to a cell and `Enter` for its calculation",
  "stepper.1": (p) =>
    `The ${en1(p.m, "value")} of ${p.set} (outlined) flow into their mean: μ${p.k} = (1/${p.m})·Σ x = ${p.mu}.`,
  "stepper.2": (p) =>
    `The same ${en1(p.m, "value")} give the variance, the mean squared distance from μ${p.k}: σ²${p.k} = (1/${p.m})·Σ (x − μ${p.k})² = ${p.v}.`,
  "stepper.3": (p) =>
    `The statistics, kept as ${p.keep}, broadcast back over the batch: every cell gets the μ and σ² of its frame and subtracts μ.`,
  "stepper.4": (p) =>
    `Each centred value is divided by √(σ² + ε): x̂ has mean 0 and variance ≈ 1 in every frame (here x̂ = ${p.xh} for the pinned cell).`,
  "stepper.5": (p) =>
    `Finally y = γ·x̂ + β with its channel's γ and β: the pinned cell becomes y = ${p.g}·${p.xh} + ${p.b} = ${p.y}.`,
  "set.batch": (p) => `${p.fc ? "feature" : "channel"} ${p.c} (every sample)`,
  "set.layer": (p) => `sample ${p.n}`,
  "set.instance": (p) => `sample ${p.n}, ${p.fc ? "feature" : "channel"} ${p.c}`,
  "set.group": (p) => `sample ${p.n}, group ${p.g}`,
  // batch dependence
  "perturb": "change sample n = 1",
  "perturb.title": "add 1 to every value of sample n = 1 and watch sample n = 0's outputs",
  "perturb.one": "the batch has one sample: there is no sample n = 1 to change",
  "perturb.train": (p) =>
    `Sample n = 1 got +1 on every value. In train mode sample n = 0's outputs moved too (${en1(p.moved, "value")}, up to |Δy| = ${p.max}, outlined): batch norm's μ and σ² mix the samples of the batch.`,
  "perturb.eval":
    "Sample n = 1 got +1 on every value. In eval mode none of sample n = 0's outputs moved: the running statistics do not depend on the batch.",
  "perturb.other":
    "Sample n = 1 got +1 on every value. None of sample n = 0's outputs moved: this norm computes μ and σ² within each sample.",
  // the steps
  "summary.hover": " Hover a cell to outline where its statistics come from; click it (or `Tab` to it and press `Enter`) for its calculation.",
  "summary.eval":
    "Batch norm in eval mode: μ and σ² are the stored running statistics, not this batch's — one sample's output no longer depends on the rest of the batch.",
  "summary.batch": (p) =>
    `Batch norm: each ${p.c} gets one mean μ and one variance σ² over its ${p.mValues} — from every sample of the batch (the shaded frames).`,
  "summary.layer": (p) =>
    `Layer norm: each sample n gets its own μ and σ² over its ${p.mValues}; the other samples play no part.`,
  "summary.instance": (p) => `Instance norm: each sample's ${p.c} map gets its own μ and σ² over its ${p.mValues}.`,
  "summary.group": (p) =>
    `Group norm: the ${en1(p.C, p.c)} split into G = ${en1(p.G, "group")}; each sample's group gets its own μ and σ² over ${p.mValues}.`,
  "word.channel": "channel",
  "word.feature": "feature",
  "mValues": (p) => `${p.mWords} value${p.m === 1 ? "" : "s"}`,
  "per.batch": (p) => `one per ${p.c} → shape (${p.fc ? "F" : "C"},)`,
  "per.layer": "one per sample → shape (N,)",
  "per.instance": (p) => `one per sample and ${p.c} → shape (N, C)`,
  "per.group": "one per sample and group → shape (N, G)",
  "keep.group": (p) => `[${p.N}, ${p.G}, 1] on the (N, G, C/G·H·W) view`,
  "shape": (p) => `shape [${p.shape}]${p.extra}`,
  "card.input": "input",
  "card.input.typed": "input (type the values)",
  "card.stats": "mean and variance σ²",
  "card.stats.eval": "running mean and running variance",
  "stored": "stored, ",
  "reduced": (p) => ` — averaged over dims (${p.axes}), ${p.mValues} each; kept as ${p.keep} to broadcast`,
  "title.x_minus_mean": "centre",
  "title.xhat": "normalize",
  "title.output": "scale and shift",
  "with.gb": (p) => `with γ = (${p.g}) and β = (${p.b}), one per ${p.c}`,
  "each1": "1 each",
  "each0": "0 each",
  "note.input.typed": 'Click a cell and type a number: every other step follows. "back to seed" returns to `torch.rand`.',
  "note.input.conv": (p) =>
    `Rows: the ${en1(p.N, "sample")} n; columns: the ${en1(p.C, "channel")} c, each H×W = ${p.H}×${p.W}. Colour = channel; dashed frames = cells that share one μ and σ².`,
  "note.input.fc": (p) =>
    `Rows: the ${en1(p.N, "sample")} n; columns: the ${en1(p.C, "feature")} f. Colour = feature; dashed frames = cells that share one μ and σ².`,
  "note.x_minus_mean": "Every value minus the mean of its frame: each frame is now centred at 0.",
  "note.xhat":
    "Divided by √(σ² + ε): each frame now has mean 0 and variance ≈ 1. ε keeps the division safe when σ² ≈ 0.",
  "note.output":
    "Scaled by γ and shifted by β of the value's channel: the layer can undo the normalization if learning wants it.",
  "note.eval.x_minus_mean":
    "Every value minus its channel's running mean — not this batch's own mean, so the frames are only roughly centred.",
  "note.eval.xhat":
    "Divided by √(running var + ε): mean ≈ 0 and variance ≈ 1 only as far as the running statistics match this batch.",
  "card.running": "running statistics, kept for eval",
  "note.running": (p) =>
    `Training also updates these buffers (before → after this batch), with momentum ${p.momentum}; the variance is stored unbiased (·m/(m − 1)). In eval mode they replace μ and σ².`,
  // the drawer
  "calc.head": "one cell, step by step",
  "calc.close": "close",
  "calc.hint":
    "Click a cell of the output y (or of any grid) to see its whole calculation with its numbers; hover one to outline the input cells its μ and σ² come from.",
  "calc.cell": "cell",
  "calc.mean": "mean",
  "calc.var": "variance",
  "calc.xhat": "normalize",
  "calc.y": "output",
  "calc.from": (p) => `— statistics from ${p.from} (outlined)`,
  "calc.stored": "(stored during training, not this batch's)",
  "from.batch": (p) => `${p.all} of ${p.fc ? "feature" : "channel"} ${p.c}`,
  "from.layer": (p) => `${p.all} of sample ${p.n}`,
  "from.instance": (p) => `${p.the} of sample ${p.n}, ${p.fc ? "feature" : "channel"} ${p.c}`,
  "from.group": (p) => `${p.the} of sample ${p.n}, group ${p.g}`,
  "all": (p) => (p.m === 1 ? "the 1 cell" : `all ${p.m} cells`),
  "the": (p) => `the ${en1(p.m, "cell")}`,
  // feeding batches
  "feed.title": "running statistics over many batches",
  "feed.hint":
    "Each click trains on one more random batch (`torch.rand`, seed + step + 1) and updates the running mean and variance with momentum: they creep towards the population values 0.5 and 1/12 of U(0, 1).",
  "feed.one": "feed a batch",
  "feed.ten": "feed 10",
  "feed.reset": "reset to 0 / 1",
  "feed.step": (p) => `step ${p.step}`,
  "feed.mean": "mean",
  "feed.var": "var",
  "feed.x": "batches fed (step)",
  "feed.ymean": "running mean",
  "feed.yvar": "running variance",
  "feed.population": "population",
  "feed.legend":
    "lines: running mean and variance per channel; hollow dots: that batch's own mean and variance; dashed: the population's.",
  // errors
  "status.stale": "⚠ not updated: fix the highlighted setting — the pictures show the last valid settings.",
  "status.none": "⚠ fix the highlighted setting to see the pictures.",
  "error.server": (p) => `cannot reach the bnlab server (${p.msg})`,
  "invalid.eps": (p) => `ε (eps): must be a number > 0 and ≤ 1000 (got "${p.v}")`,
  "invalid.momentum": (p) => `momentum: must be a number from 0 to 1 (got "${p.v}")`,
  "invalid.gamma": (p) => `γ${p.sub} (gamma.${p.i}): must be a finite number (got "${p.v}")`,
  "invalid.beta": (p) => `β${p.sub} (beta.${p.i}): must be a finite number (got "${p.v}")`,
  "invalid.rmean": (p) => `running mean ${p.i}: must be a finite number (got "${p.v}")`,
  "invalid.rvar": (p) => `running var ${p.i}: must be a finite number ≥ 0 (got "${p.v}")`,
  "invalid.size": (p) => `${p.dim} (shape.${p.i}): must be a whole number from 1 to ${p.max} (got "${p.v}")`,
  "invalid.numel": (p) => `shape: at most ${p.max} values in all (got ${p.numel})`,
  "invalid.bn1": "shape: batch norm in training needs more than 1 value per channel",
  "invalid.seed": (p) => `seed: must be a whole number from 0 to ${p.max} (got "${p.v}")`,
  "invalid.groups": (p) => `groups: G must divide the ${en1(p.c, "channel")} (got ${p.v})`,
  "invalid.value": (p) => `x[${p.at}] (values.${p.i}): must be a finite number (got "${p.v}")`,
  // the link
  "url.note": (p) => `Ignored from the link, defaults used instead: ${p.items}.`,
  "url.why.unknown": "not a parameter of the explorer",
  "url.why.choice": "not one of the choices",
  "url.why.shape": "expected 4 sizes N,C,H,W (or 2, N,F)",
  "url.why.shape-fc": "expected 2 sizes N,F for the fully connected layout",
  "url.why.size": (p) => `every size must be 1 … ${p.max}, at most ${p.numel} values in all`,
  "url.why.seed": (p) => `expected a whole number 0 … ${p.max}`,
  "url.why.instance-fc": "instance norm needs (N, C, H, W)",
  "url.why.eval-batch": "eval mode applies to batch norm only",
  "url.why.eps": "expected a number > 0",
  "url.why.per-channel": "expected one number per channel",
  "url.why.groups": "expected a G that divides C",
  "url.why.values": "expected one finite number per cell of the shape",
  "url.why.pin": "expected a cell inside the shape",
  "url.why.step": (p) => `expected a step 1 … ${p.max}`,
  // the training view
  "train.run": "run",
  "train.compare": "compare with",
  "train.reload": "reload",
  "train.none": "(none)",
  "train.root": "runs from",
  "train.cannot": (p) => `cannot read the runs (${p.msg})`,
  "train.empty": "no runs found",
  "train.empty.root": (p) => `No folder under \`${p.root}\` holds a \`metrics.jsonl\`. Train some with \`bnlab train RECIPE\`, then reload.`,
  "train.empty.none": "The committed runs (`docs/results`) were not found: start the server with `bnlab serve --runs DIR`.",
  "train.model": "model",
  "train.bn": "BN",
  "train.bn.none": "none",
  "train.lr": "lr",
  "train.epochs": (p) => `${p.n} epoch${p.n === 1 ? "" : "s"}`,
  "train.final": (p) => `final test acc ${p.acc} %`,
  "train.loss.title": "train loss per epoch",
  "train.acc.title": "accuracy per epoch (dashed: train, solid: test)",
  "train.epoch": "epoch",
  "train.loss": "loss",
  "train.acc": "accuracy",
  "train.train": "train",
  "train.test": "test",
  "train.step": "training step",
  "train.preact": "pre-activation",
  "train.layer": (p) => ` — layer "\`${p.layer}\`"`,
  "train.nolayer": (p) => `: no layer #${p.k}`,
  "train.nonlin": (p) => `nonlinearity #${p.k}: its input, channel 0`,
  "train.dist": "Distribution of pre-activations over training",
  "train.dist.hint":
    "Per layer, the 15th–85th percentile band (shaded) and the median (line) of the input to each `sigmoid`/`ReLU`, channel 0, as training goes on — the BN paper's Figure 1(b, c). Both charts of a row share one y-scale: compare how far the band drifts with and without BN.",
  "train.noacts": "no activation records in these runs",
};

const ZH = {
  "doc.title": "bnlab — 批量归一化演示",
  "title.long": "批量归一化",
  "title.explorer": "演示",
  "tab.explorer": "演示",
  "tab.training": "训练",
  "lang.other": "English",
  "lang.other.title": "Show the page in English",
  "aria.settings": "设置",
  "aria.steps": "计算步骤",
  "grp.tensor": "1 · 输入张量",
  "layout": "布局",
  "layout.conv": "卷积层 (N, C, H, W)",
  "layout.fc": "全连接层 (N, F)",
  "seed": "随机种子",
  "edit": "编辑数值",
  "edit.back": "恢复随机数值",
  "edit.title": "自己输入数值，代替 torch.rand 生成的随机数",
  "seed.hint": "x = `torch.rand(shape)`，之前先调用 `torch.manual_seed(seed)`",
  "seed.hint.typed": "x = 你在输入单元格中键入的数值",
  "grp.norm": "2 · 归一化",
  "norm": "归一化方式",
  "norm.batch": "批量归一化",
  "norm.layer": "层归一化",
  "norm.instance": "实例归一化",
  "norm.group": "组归一化",
  "groups": "组数 G",
  "groups.title": "G 必须整除 C",
  "groups.layer": "1（层归一化）",
  "groups.instance": (p) => `${p.d}（实例归一化）`,
  "groups.feature": (p) => `${p.d}（每组 1 个特征）`,
  "group.note": (p) =>
    `现在 ${p.C} = ${p.wider}（原来是 ${p.c}）：只有 ${p.c} 个${p.fc ? "特征" : "通道"}时，任何 G 都只是` +
    `层归一化（G = 1）或${p.fc ? "每组一个特征" : "实例归一化"}（G = ${p.c}）。`,
  "mode": "模式",
  "mode.train": "训练模式",
  "mode.eval": "预测模式",
  "momentum": "动量",
  "grp.channels": "3 · 每个通道的参数",
  "chan.channel": "通道",
  "chan.feature": "特征",
  "chan.gamma": "γ（拉伸参数）",
  "chan.beta": "β（偏移参数）",
  "run.inputs": "预测模式使用的移动平均",
  "run.mean": "均值的移动平均",
  "run.var": "方差的移动平均",
  "chan.hint.train": "γ 和 β 按通道学习：y = γ·x̂ + β。",
  "chan.hint.eval": "预测模式：用均值和方差的移动平均代替本小批量的 μ 和 σ²。输入更多小批量（右侧）会更新它们。",
  "chan.hint.layer":
    "这里的 γ 和 β 与下面各步一样，每个通道一个；而 `torch.nn.LayerNorm` 为其归一化形状 (C, H, W) 的每个元素各学习一个 γ 和 β。",
  "norm.hint.conv.batch": "每个通道一个 μ 和 σ²，在整个小批量 (N, H, W) 上计算",
  "norm.hint.conv.layer": "每个样本一个 μ 和 σ²，在 (C, H, W) 上计算",
  "norm.hint.conv.instance": "每个样本的每个通道一个 μ 和 σ²，在 (H, W) 上计算",
  "norm.hint.conv.group": "每个样本的每组（C/G 个通道）一个 μ 和 σ²",
  "norm.hint.fc.batch": "每个特征一个 μ 和 σ²，在小批量 (N) 上计算",
  "norm.hint.fc.layer": "每个样本一个 μ 和 σ²，在它的特征 (F) 上计算",
  "norm.hint.fc.instance": "实例归一化需要 (N, C, H, W) 形状的输入",
  "norm.hint.fc.group": "每个样本的每组（F/G 个特征）一个 μ 和 σ²",
  "reset": "原文示例",
  "reset.title": "回到博文中的例子",
  "loading": "加载中…",
  "stepper.start": "逐步演示",
  "stepper.stop": "结束逐步演示",
  "stepper.prev": "← 上一步",
  "stepper.next": "下一步 →",
  "stepper.of": (p) => `第 ${p.k} 步，共 ${p.n} 步`,
  "stepper.keys": "按 ← 和 → 键翻页；用 `Tab` 键选中单元格，按回车查看它的计算过程",
  "stepper.1": (p) => `${p.set}的 ${p.m} 个值（已框出）汇入它们的均值：μ${p.k} = (1/${p.m})·Σ x = ${p.mu}。`,
  "stepper.2": (p) =>
    `同样这 ${p.m} 个值给出方差，即到 μ${p.k} 的距离平方的平均：σ²${p.k} = (1/${p.m})·Σ (x − μ${p.k})² = ${p.v}。`,
  "stepper.3": (p) => `统计量保持为 ${p.keep} 的形状，广播回整个小批量：每个单元格得到其所在框的 μ 和 σ²，并减去 μ。`,
  "stepper.4": (p) =>
    `每个中心化后的值除以 √(σ² + ε)：在每个框内 x̂ 的均值为 0、方差约为 1（选中的单元格 x̂ = ${p.xh}）。`,
  "stepper.5": (p) =>
    `最后用所在通道的 γ 和 β 计算 y = γ·x̂ + β：选中的单元格得到 y = ${p.g}·${p.xh} + ${p.b} = ${p.y}。`,
  "set.batch": (p) => `${p.fc ? "特征" : "通道"} ${p.c}（所有样本）`,
  "set.layer": (p) => `样本 ${p.n} `,
  "set.instance": (p) => `样本 ${p.n} 的${p.fc ? "特征" : "通道"} ${p.c} `,
  "set.group": (p) => `样本 ${p.n} 的第 ${p.g} 组`,
  "perturb": "改变样本 n = 1",
  "perturb.title": "给样本 n = 1 的每个值加 1，观察样本 n = 0 的输出",
  "perturb.one": "这个小批量只有一个样本：没有样本 n = 1 可以改变",
  "perturb.train": (p) =>
    `样本 n = 1 的每个值都加了 1。在训练模式下，样本 n = 0 的输出也跟着变了（${p.moved} 个值，|Δy| 最大为 ${p.max}，已框出）：批量归一化的 μ 和 σ² 混合了小批量中的所有样本。`,
  "perturb.eval": "样本 n = 1 的每个值都加了 1。在预测模式下，样本 n = 0 的输出一个也没有变：移动平均不依赖于当前小批量。",
  "perturb.other": "样本 n = 1 的每个值都加了 1。样本 n = 0 的输出一个也没有变：这种归一化只在每个样本内部计算 μ 和 σ²。",
  "summary.hover": " 把鼠标移到单元格上，会框出它的统计量来自哪些值；点击它（或用 `Tab` 键选中后按回车）查看计算过程。",
  "summary.eval":
    "预测模式下的批量归一化：μ 和 σ² 是保存下来的移动平均，而不是本小批量的统计量——一个样本的输出不再依赖于小批量中的其他样本。",
  "summary.batch": (p) =>
    `批量归一化：每个${p.c}在它的 ${p.mValues} 上得到一个均值 μ 和一个方差 σ²——这些值来自小批量中的每个样本（阴影框）。`,
  "summary.layer": (p) => `层归一化：每个样本 n 在它自己的 ${p.mValues} 上得到自己的 μ 和 σ²；其他样本不参与。`,
  "summary.instance": (p) => `实例归一化：每个样本的每个${p.c}在它的 ${p.mValues} 上得到自己的 μ 和 σ²。`,
  "summary.group": (p) =>
    `组归一化：${p.C} 个${p.c}分成 G = ${p.G} 组；每个样本的每组在 ${p.mValues} 上得到自己的 μ 和 σ²。`,
  "word.channel": "通道",
  "word.feature": "特征",
  "mValues": (p) => `${p.mWords} 个值`,
  "per.batch": (p) => `每个${p.c}一个 → 形状 (${p.fc ? "F" : "C"},)`,
  "per.layer": "每个样本一个 → 形状 (N,)",
  "per.instance": (p) => `每个样本的每个${p.c}一个 → 形状 (N, C)`,
  "per.group": "每个样本的每组一个 → 形状 (N, G)",
  "keep.group": (p) => `[${p.N}, ${p.G}, 1]（在 (N, G, C/G·H·W) 视图上）`,
  "shape": (p) => `形状 [${p.shape}]${p.extra}`,
  "card.input": "输入",
  "card.input.typed": "输入（键入数值）",
  "card.stats": "均值和方差 σ²",
  "card.stats.eval": "均值和方差的移动平均",
  "stored": "已保存，",
  "reduced": (p) => `——在维度 (${p.axes}) 上求平均，每个 ${p.mValues}；保持为 ${p.keep} 以便广播`,
  "title.x_minus_mean": "中心化",
  "title.xhat": "标准化",
  "title.output": "拉伸和偏移",
  "with.gb": (p) => `γ = (${p.g})，β = (${p.b})，每个${p.c}一个`,
  "each1": "均为 1",
  "each0": "均为 0",
  "note.input.typed": "点击单元格并键入数字：其他各步都会随之更新。“恢复随机数值”回到 `torch.rand`。",
  "note.input.conv": (p) =>
    `行：${p.N} 个样本 n；列：${p.C} 个通道 c，每个 H×W = ${p.H}×${p.W}。颜色表示通道；虚线框内的单元格共用一个 μ 和 σ²。`,
  "note.input.fc": (p) => `行：${p.N} 个样本 n；列：${p.C} 个特征 f。颜色表示特征；虚线框内的单元格共用一个 μ 和 σ²。`,
  "note.x_minus_mean": "每个值减去它所在框的均值：现在每个框都以 0 为中心。",
  "note.xhat": "除以 √(σ² + ε)：现在每个框的均值为 0、方差约为 1。σ² ≈ 0 时，ε 保证除法安全。",
  "note.output": "用该值所在通道的 γ 拉伸、β 偏移：如果学习需要，这一层可以抵消归一化。",
  "note.eval.x_minus_mean": "每个值减去所在通道均值的移动平均——不是本小批量自己的均值，所以各框只是大致居中。",
  "note.eval.xhat": "除以 √(方差的移动平均 + ε)：只有当移动平均与本小批量相符时，均值才约为 0、方差才约为 1。",
  "card.running": "移动平均，留给预测模式使用",
  "note.running": (p) =>
    `训练时也会更新这些缓冲区（本小批量之前 → 之后），动量为 ${p.momentum}；方差以无偏估计保存（·m/(m − 1)）。预测模式下用它们代替 μ 和 σ²。`,
  "calc.head": "一个单元格的逐步计算",
  "calc.close": "关闭",
  "calc.hint": "点击输出 y（或任意网格）中的单元格，查看它带具体数字的完整计算过程；鼠标悬停时会框出其 μ 和 σ² 所用的输入单元格。",
  "calc.cell": "单元格",
  "calc.mean": "均值",
  "calc.var": "方差",
  "calc.xhat": "标准化",
  "calc.y": "输出",
  "calc.from": (p) => `——统计量来自${p.from}（已框出）`,
  "calc.stored": "（训练时保存的，不是本小批量的）",
  "from.batch": (p) => `${p.fc ? "特征" : "通道"} ${p.c} 的${p.all}`,
  "from.layer": (p) => `样本 ${p.n} 的${p.all}`,
  "from.instance": (p) => `样本 ${p.n}、${p.fc ? "特征" : "通道"} ${p.c} 的${p.the}`,
  "from.group": (p) => `样本 ${p.n} 第 ${p.g} 组的${p.the}`,
  "all": (p) => (p.m === 1 ? "唯一 1 个单元格" : `全部 ${p.m} 个单元格`),
  "the": (p) => `${p.m} 个单元格`,
  "feed.title": "多个小批量上的移动平均",
  "feed.hint":
    "每点击一次，就用一个新的随机小批量训练一步（`torch.rand`，随机种子 + 步数 + 1），并按动量更新均值和方差的移动平均：它们慢慢接近 U(0, 1) 的总体均值 0.5 和总体方差 1/12。",
  "feed.one": "输入一个小批量",
  "feed.ten": "输入 10 个",
  "feed.reset": "重置为 0 / 1",
  "feed.step": (p) => `第 ${p.step} 步`,
  "feed.mean": "均值",
  "feed.var": "方差",
  "feed.x": "已输入的小批量数（步数）",
  "feed.ymean": "均值的移动平均",
  "feed.yvar": "方差的移动平均",
  "feed.population": "总体",
  "feed.legend": "实线：每个通道的均值和方差的移动平均；空心点：该小批量自己的均值和方差；虚线：总体的值。",
  "status.stale": "⚠ 未更新：请修改标出的设置——图中显示的是上一次有效的设置。",
  "status.none": "⚠ 请修改标出的设置以显示图形。",
  "error.server": (p) => `无法连接到 bnlab 服务器（${p.msg}）`,
  "invalid.eps": (p) => `ε：必须是大于 0、不超过 1000 的数（当前为“${p.v}”）`,
  "invalid.momentum": (p) => `动量：必须是 0 到 1 之间的数（当前为“${p.v}”）`,
  "invalid.gamma": (p) => `γ${p.sub}：必须是有限的数（当前为“${p.v}”）`,
  "invalid.beta": (p) => `β${p.sub}：必须是有限的数（当前为“${p.v}”）`,
  "invalid.rmean": (p) => `通道 ${p.i} 均值的移动平均：必须是有限的数（当前为“${p.v}”）`,
  "invalid.rvar": (p) => `通道 ${p.i} 方差的移动平均：必须是不小于 0 的有限数（当前为“${p.v}”）`,
  "invalid.size": (p) => `${p.dim}：必须是 1 到 ${p.max} 之间的整数（当前为“${p.v}”）`,
  "invalid.numel": (p) => `形状：总共最多 ${p.max} 个值（当前为 ${p.numel} 个）`,
  "invalid.bn1": "形状：训练模式下的批量归一化要求每个通道多于 1 个值",
  "invalid.seed": (p) => `随机种子：必须是 0 到 ${p.max} 之间的整数（当前为“${p.v}”）`,
  "invalid.groups": (p) => `组数：G 必须整除通道数 ${p.c}（当前为 ${p.v}）`,
  "invalid.value": (p) => `x[${p.at}]：必须是有限的数（当前为“${p.v}”）`,
  "url.note": (p) => `链接中的以下参数已忽略，改用默认值：${p.items}。`,
  "url.why.unknown": "演示中没有这个参数",
  "url.why.choice": "不是可选的值之一",
  "url.why.shape": "应为 4 个大小 N,C,H,W（或 2 个：N,F）",
  "url.why.shape-fc": "全连接布局应为 2 个大小 N,F",
  "url.why.size": (p) => `每个大小必须在 1 到 ${p.max} 之间，总共最多 ${p.numel} 个值`,
  "url.why.seed": (p) => `应为 0 到 ${p.max} 之间的整数`,
  "url.why.instance-fc": "实例归一化需要 (N, C, H, W) 形状的输入",
  "url.why.eval-batch": "预测模式只适用于批量归一化",
  "url.why.eps": "应为大于 0 的数",
  "url.why.per-channel": "应为每个通道一个数",
  "url.why.groups": "G 应能整除 C",
  "url.why.values": "应为形状中每个单元格一个有限的数",
  "url.why.pin": "应为形状内的一个单元格",
  "url.why.step": (p) => `应为第 1 到 ${p.max} 步`,
  "train.run": "训练记录",
  "train.compare": "对比",
  "train.reload": "重新加载",
  "train.none": "（无）",
  "train.root": "训练记录来自",
  "train.cannot": (p) => `无法读取训练记录（${p.msg}）`,
  "train.empty": "没有找到训练记录",
  "train.empty.root": (p) => `目录 \`${p.root}\` 下没有包含 \`metrics.jsonl\` 的文件夹。请先运行 \`bnlab train RECIPE\` 训练，然后重新加载。`,
  "train.empty.none": "没有找到随项目提交的训练记录（`docs/results`）：请用 `bnlab serve --runs DIR` 启动服务器。",
  "train.model": "模型",
  "train.bn": "批量归一化",
  "train.bn.none": "无",
  "train.lr": "学习率",
  "train.epochs": (p) => `${p.n} 个迭代周期`,
  "train.final": (p) => `最终测试精度 ${p.acc} %`,
  "train.loss.title": "每个迭代周期的训练损失",
  "train.acc.title": "每个迭代周期的精度（虚线：训练，实线：测试）",
  "train.epoch": "迭代周期",
  "train.loss": "损失",
  "train.acc": "精度",
  "train.train": "训练",
  "train.test": "测试",
  "train.step": "训练步数",
  "train.preact": "激活前的值",
  "train.layer": (p) => ` —— 第 “\`${p.layer}\`” 层`,
  "train.nolayer": (p) => `：没有第 ${p.k} 层`,
  "train.nonlin": (p) => `第 ${p.k} 个非线性激活：它的输入，通道 0`,
  "train.dist": "训练过程中激活前的值的分布",
  "train.dist.hint":
    "对每一层，画出每个 `sigmoid`/`ReLU` 的输入（通道 0）在训练过程中的第 15 到第 85 百分位区间（阴影）和中位数（线）——即批量归一化论文的图 1(b, c)。同一行的两张图共用一个纵轴：比较有无批量归一化时区间漂移的程度。",
  "train.noacts": "这些训练记录中没有激活值记录",
};

export const CATALOG = { en: EN, zh: ZH };

/** The string of ``key`` in the page's language. */
export function t(key, params = {}) {
  const entry = CATALOG[state.lang]?.[key] ?? EN[key];
  if (entry === undefined) return key;
  return typeof entry === "function" ? entry(params) : entry;
}

/** Text with `code` spans, as DOM nodes: code is drawn as <code>, the rest as text. */
export function rich(text) {
  return String(text)
    .split("`")
    .map((part, i) => {
      if (i % 2 === 0) return document.createTextNode(part);
      const c = document.createElement("code");
      c.textContent = part;
      return c;
    });
}

/** The page's fixed strings: [data-i18n] text, [data-i18n-title] titles, [data-i18n-aria] labels. */
export function translateStatic() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  document.title = t("doc.title");
  for (const el of document.querySelectorAll("[data-i18n]")) el.replaceChildren(...rich(t(el.dataset.i18n)));
  for (const el of document.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  for (const el of document.querySelectorAll("[data-i18n-aria]")) el.setAttribute("aria-label", t(el.dataset.i18nAria));
}

// ---- the server's 422 messages, as the learner reads them --------------------------------------
const FIELD_ZH = {
  eps: "ε", gamma: "γ", beta: "β", seed: "随机种子", shape: "形状", values: "数值", groups: "组数 G",
  momentum: "动量", running_mean: "均值的移动平均", running_var: "方差的移动平均", mode: "模式",
  norm: "归一化方式", step: "步数", body: "请求",
};
const MESSAGES_ZH = [
  [/^Input should be greater than or equal to (\S+)$/, (m) => `应不小于 ${m[1]}`],
  [/^Input should be greater than (\S+)$/, (m) => `应大于 ${m[1]}`],
  [/^Input should be less than or equal to (\S+)$/, (m) => `应不大于 ${m[1]}`],
  [/^Input should be less than (\S+)$/, (m) => `应小于 ${m[1]}`],
  [/^Input should be a valid number/, () => "应为有效的数"],
  [/^Input should be a valid integer/, () => "应为整数"],
  [/^Input should be a valid (list|array)/, () => "应为一组数"],
  [/^Input should be '(\w+)'(?:, '(\w+)')*(?: or '(\w+)')?$/, () => "不是可选的值之一"],
  [/^Field required$/, () => "缺少这一项"],
  [/^every size must be ≥ 1 \(got (.*)\)$/, (m) => `每个大小都必须 ≥ 1（当前为 ${m[1]}）`],
  [/^at most (\d+) elements(?: \(got (\d+)\))?$/, (m) => `总共最多 ${m[1]} 个元素${m[2] ? `（当前为 ${m[2]} 个）` : ""}`],
  [/^expected \(N, F\) or \(N, C, H, W\)(?: of sizes ≥ 1)? \(got (.*?)( dimensions)?\)$/, (m) => `应为 (N, F) 或 (N, C, H, W) 形状（当前为 ${m[1]}${m[2] ? " 维" : ""}）`],
  [/^expected (\d+) values?, one per channel \(got (\d+)\)$/, (m) => `应有 ${m[1]} 个值，每个通道一个（当前为 ${m[2]} 个）`],
  [/^expected (\d+) values? for shape (\[.*\]) \(got (\d+)\)$/, (m) => `形状 ${m[2]} 应有 ${m[1]} 个值（当前为 ${m[3]} 个）`],
  [/^must divide the (\d+) channels? \(got (\d+)\)$/, (m) => `必须整除通道数 ${m[1]}（当前为 ${m[2]}）`],
  [/^variances must be ≥ 0$/, () => "方差必须 ≥ 0"],
  [/^every value must be a finite float32 number/, () => "每个值都必须是有限的 float32 数（|v| ≤ 3.4e38）"],
  [/^instance norm needs/, () => "实例归一化需要 (N, C, H, W) 形状的输入；(N, F) 输入没有可以求平均的 H×W"],
  [/^eval \(running statistics\) applies to batch norm only$/, () => "预测模式（移动平均）只适用于批量归一化"],
  [/needs more than 1 value per channel$/, () => "训练模式下每个通道需要多于 1 个值"],
  [/^malformed JSON/, () => "无法解析的数据"],
  [/^request body over (\d+) bytes$/, (m) => `请求超过 ${m[1]} 字节`],
];

/** The server's message (``detail`` of a 422, "field: message") in the page's language. */
export function apiMessage(detail) {
  if (state.lang !== "zh") return detail;
  const text = String(detail);
  const cut = text.indexOf(": ");
  const field = cut > 0 ? text.slice(0, cut) : "body";
  const rest = cut > 0 ? text.slice(cut + 2) : text;
  const [root, idx] = field.split(".");
  const name = `${FIELD_ZH[root] ?? FIELD_ZH.body}${idx !== undefined ? ` 第 ${idx} 项` : ""}`;
  for (const [re, zh] of MESSAGES_ZH) {
    const m = rest.match(re);
    if (m) return `${name}：${zh(m)}`;
  }
  return `${name}：服务器拒绝了这个值`;
}
