//! A trained net as an ONNX model (opset 17, IR version 8): the same operations as its forward pass in
//! eval mode, node for node, with the weights as initializers read from the var store and the dataset's
//! normalisation as the graph's first two nodes, so the model takes raw pixels. The batch dimension is free
//! (`N`).

use super::onnx_proto as pb;
use crate::data::{Normalization, Shape};
use crate::nn::lenet1998::{self, LeNet1998};
use crate::nn::{LeNet5, LeNet5Modern, Net};
use anyhow::{Context, Result};
use lenet5_lab::config::{Activation, Pooling};
use prost::Message;
use tch::{Device, Kind, Tensor, nn};

/// The opset the graph's operators are written for (Pad, ReduceSum and Unsqueeze take their axes and pads
/// as inputs since 13; BatchNormalization's form is 15's).
pub const OPSET: i64 = 17;
/// The IR version that goes with opset 17.
const IR_VERSION: i64 = 8;
/// The graph's input and output names.
pub const INPUT: &str = "pixels";
pub const OUTPUT: &str = "logits";
/// `tch::nn::BatchNormConfig`'s default epsilon, which `lenet5_modern` builds its batch norms with.
const BN_EPSILON: f32 = 1e-5;

/// `net` for `shape` images normalised by `norm`, as a serialized `ModelProto`.
pub fn model(net: &Net, shape: Shape, norm: &Normalization) -> Result<Vec<u8>> {
    let mut g = Graph::default();
    let x = normalize(&mut g, norm);
    let logits = match net {
        Net::Lenet5(n) => lenet5(&mut g, n, x)?,
        Net::Lenet5Modern(n) => modern(&mut g, n, x, shape)?,
        Net::Lenet1998(n) => lenet1998(&mut g, n, x)?,
    };
    g.op_into("Identity", &[&logits], vec![], OUTPUT);
    let batch = |rest: &[i64]| {
        let mut dims = vec![pb::DimValue::Param("N".into())];
        dims.extend(rest.iter().map(|&d| pb::DimValue::Value(d)));
        dims
    };
    let graph = pb::GraphProto {
        node: g.nodes,
        name: "lenet5".into(),
        initializer: g.initializers,
        input: vec![value_info(
            INPUT,
            batch(&[shape.channels, shape.side, shape.side]),
        )],
        output: vec![value_info(OUTPUT, batch(&[crate::data::NUM_CLASSES]))],
    };
    let model = pb::ModelProto {
        ir_version: IR_VERSION,
        producer_name: "lenet5".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: "raw pixels in [0, 1], [N, C, H, W] -> logits [N, 10]".into(),
        graph: Some(graph),
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
    };
    Ok(model.encode_to_vec())
}

fn value_info(name: &str, dims: Vec<pb::DimValue>) -> pb::ValueInfoProto {
    let dim = dims
        .into_iter()
        .map(|v| pb::Dimension { value: Some(v) })
        .collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::TypeValue::TensorType(pb::TensorType {
                elem_type: pb::FLOAT,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
        }),
    }
}

/// The graph as it grows: nodes in order, initializers, and a counter for intermediate names.
#[derive(Default)]
struct Graph {
    nodes: Vec<pb::NodeProto>,
    initializers: Vec<pb::TensorProto>,
    count: usize,
}

impl Graph {
    /// A node whose one output gets a fresh name, returned.
    fn op(&mut self, op: &str, inputs: &[&str], attribute: Vec<pb::AttributeProto>) -> String {
        self.count += 1;
        let out = format!("{}_{}", op.to_lowercase(), self.count);
        self.op_into(op, inputs, attribute, &out);
        out
    }

    fn op_into(
        &mut self,
        op: &str,
        inputs: &[&str],
        attribute: Vec<pb::AttributeProto>,
        out: &str,
    ) {
        self.nodes.push(pb::NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.into()],
            name: format!("{op}_{}", self.nodes.len()),
            op_type: op.into(),
            attribute,
        });
    }

    /// A float initializer holding `t`'s values (read on the CPU); its name is returned.
    fn weight(&mut self, name: &str, t: &Tensor) -> Result<String> {
        let t = t.detach().to_device(Device::Cpu).to_kind(Kind::Float);
        let values = Vec::<f32>::try_from(t.contiguous().view(-1))
            .with_context(|| format!("cannot read weight {name}"))?;
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(name, t.size(), pb::FLOAT, raw);
        Ok(name.into())
    }

    /// A float initializer of shape `dims` holding `values`.
    fn floats(&mut self, name: &str, dims: Vec<i64>, values: &[f32]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(name, dims, pb::FLOAT, raw);
        name.into()
    }

    /// A 0-d float initializer.
    fn scalar(&mut self, name: &str, value: f64) -> String {
        self.floats(name, vec![], &[value as f32])
    }

    /// A 1-d int64 initializer (axes and pads, which opset 13 on takes as inputs).
    fn int64s(&mut self, name: &str, values: &[i64]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(name, vec![values.len() as i64], pb::INT64, raw);
        name.into()
    }

    /// Adds an initializer; a shared constant (the squash's slope, say) is added once under its name.
    fn initializer(&mut self, name: &str, dims: Vec<i64>, data_type: i32, raw_data: Vec<u8>) {
        if self.initializers.iter().any(|t| t.name == name) {
            return;
        }
        self.initializers.push(pb::TensorProto {
            dims,
            data_type,
            name: name.into(),
            raw_data,
        });
    }
}

fn ints(name: &str, ints: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        ints: ints.to_vec(),
        r#type: pb::ATTR_INTS,
        ..Default::default()
    }
}

fn int(name: &str, i: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        i: Some(i),
        r#type: pb::ATTR_INT,
        ..Default::default()
    }
}

fn float(name: &str, f: f32) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        f: Some(f),
        r#type: pb::ATTR_FLOAT,
        ..Default::default()
    }
}

/// `(x − mean[c]) / std[c]`, as `data::normalize` computes it (float32 per-channel constants).
fn normalize(g: &mut Graph, norm: &Normalization) -> String {
    let per_channel = |values: &[f64]| values.iter().map(|&v| v as f32).collect::<Vec<_>>();
    let c = norm.mean.len() as i64;
    let mean = g.floats("normalize.mean", vec![1, c, 1, 1], &per_channel(norm.mean));
    let std = g.floats("normalize.std", vec![1, c, 1, 1], &per_channel(norm.std));
    let x = g.op("Sub", &[INPUT, &mean], vec![]);
    g.op("Div", &[&x, &std], vec![])
}

/// A 2-d convolution with `conv`'s weights, stride 1 and `padding` on every side.
fn conv(g: &mut Graph, name: &str, conv: &nn::Conv2D, x: &str, padding: i64) -> Result<String> {
    conv_with(g, name, &conv.ws, conv.bs.as_ref(), x, padding)
}

fn conv_with(
    g: &mut Graph,
    name: &str,
    ws: &Tensor,
    bs: Option<&Tensor>,
    x: &str,
    padding: i64,
) -> Result<String> {
    let kernel = ws.size()[2..].to_vec();
    let mut inputs = vec![x.to_string(), g.weight(&format!("{name}.weight"), ws)?];
    if let Some(b) = bs {
        inputs.push(g.weight(&format!("{name}.bias"), b)?);
    }
    let attrs = vec![
        ints("kernel_shape", &kernel),
        ints("pads", &[padding; 4]),
        ints("strides", &[1, 1]),
    ];
    Ok(g.op("Conv", &refs(&inputs), attrs))
}

/// `x · Wᵀ + b` with a `tch::nn::Linear`'s weights.
fn gemm(g: &mut Graph, name: &str, linear: &nn::Linear, x: &str) -> Result<String> {
    let mut inputs = vec![
        x.to_string(),
        g.weight(&format!("{name}.weight"), &linear.ws)?,
    ];
    if let Some(b) = &linear.bs {
        inputs.push(g.weight(&format!("{name}.bias"), b)?);
    }
    Ok(g.op("Gemm", &refs(&inputs), vec![int("transB", 1)]))
}

fn refs(names: &[String]) -> Vec<&str> {
    names.iter().map(String::as_str).collect()
}

/// 2×2 pooling with stride 2.
fn pool(g: &mut Graph, pooling: Pooling, x: &str) -> String {
    let op = match pooling {
        Pooling::Avg => "AveragePool",
        Pooling::Max => "MaxPool",
    };
    let attrs = vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])];
    g.op(op, &[x], attrs)
}

fn act(g: &mut Graph, activation: Activation, x: &str) -> String {
    let op = match activation {
        Activation::Relu => "Relu",
        Activation::Sigmoid => "Sigmoid",
        Activation::Tanh => "Tanh",
    };
    g.op(op, &[x], vec![])
}

/// The seed's net, as `LeNet5::forward_t` (its definition) computes it.
fn lenet5(g: &mut Graph, n: &LeNet5, x: String) -> Result<String> {
    let x = conv(g, "conv1", &n.conv1, &x, n.conv1_padding)?;
    let x = pool(g, n.pooling, &x);
    let x = seed_norm(g, n, 0, x)?;
    let x = act(g, n.activation, &x);
    let x = conv(g, "conv2", &n.conv2, &x, 0)?;
    let x = pool(g, n.pooling, &x);
    let x = seed_norm(g, n, 1, x)?;
    let x = act(g, n.activation, &x);
    let x = g.op("Flatten", &[&x], vec![int("axis", 1)]);
    let x = gemm(g, "fc1", &n.fc1, &x)?;
    let x = seed_norm(g, n, 2, x)?;
    let x = act(g, n.activation, &x);
    let x = gemm(g, "fc2", &n.fc2, &x)?;
    let x = seed_norm(g, n, 3, x)?;
    let x = act(g, n.activation, &x);
    gemm(g, "fc3", &n.fc3, &x)
}

/// The seed's net's batch norm `i` (`bn1`–`bn4`) where `model.batch_norm` added them; dropout is the
/// identity in eval mode.
fn seed_norm(g: &mut Graph, n: &LeNet5, i: usize, x: String) -> Result<String> {
    match &n.norms {
        Some(norms) => batch_norm(g, &format!("bn{}", i + 1), &norms[i], &x),
        None => Ok(x),
    }
}

/// Batch norm with its running statistics (eval mode), on `[N, C, H, W]` or `[N, C]`.
fn batch_norm(g: &mut Graph, name: &str, bn: &nn::BatchNorm, x: &str) -> Result<String> {
    let ones = bn.running_mean.ones_like();
    let zeros = bn.running_mean.zeros_like();
    let inputs = [
        x.to_string(),
        g.weight(&format!("{name}.weight"), bn.ws.as_ref().unwrap_or(&ones))?,
        g.weight(&format!("{name}.bias"), bn.bs.as_ref().unwrap_or(&zeros))?,
        g.weight(&format!("{name}.running_mean"), &bn.running_mean)?,
        g.weight(&format!("{name}.running_var"), &bn.running_var)?,
    ];
    let attrs = vec![float("epsilon", BN_EPSILON)];
    Ok(g.op("BatchNormalization", &refs(&inputs), attrs))
}

/// The modern variant in eval mode (dropout is the identity there).
fn modern(g: &mut Graph, n: &LeNet5Modern, x: String, shape: Shape) -> Result<String> {
    let padding = crate::nn::lenet5::conv1_padding(shape);
    let x = conv(g, "conv1", &n.conv1, &x, padding)?;
    let x = batch_norm(g, "bn1", &n.bn1, &x)?;
    let x = g.op("Relu", &[&x], vec![]);
    let x = pool(g, Pooling::Max, &x);
    let x = conv(g, "conv2", &n.conv2, &x, 0)?;
    let x = batch_norm(g, "bn2", &n.bn2, &x)?;
    let x = g.op("Relu", &[&x], vec![]);
    let x = pool(g, Pooling::Max, &x);
    let x = g.op("Flatten", &[&x], vec![int("axis", 1)]);
    let x = gemm(g, "fc1", &n.fc1, &x)?;
    let x = batch_norm(g, "bn3", &n.bn3, &x)?;
    let x = g.op("Relu", &[&x], vec![]);
    let x = gemm(g, "fc2", &n.fc2, &x)?;
    let x = batch_norm(g, "bn4", &n.bn4, &x)?;
    let x = g.op("Relu", &[&x], vec![]);
    gemm(g, "fc3", &n.fc3, &x)
}

/// f(a) = A·tanh(S·a), as `lenet1998::squash`.
fn squash(g: &mut Graph, x: &str) -> String {
    let s = g.scalar("squash.slope", 2.0 / 3.0);
    let a = g.scalar("squash.bound", lenet1998::SQUASH_BOUND);
    let x = g.op("Mul", &[x, &s], vec![]);
    let x = g.op("Tanh", &[&x], vec![]);
    g.op("Mul", &[&x, &a], vec![])
}

/// S2/S4: the 2×2 sum (a mean times 4, as the net computes it) times a per-map coefficient plus a per-map
/// bias, squashed.
fn subsample(g: &mut Graph, name: &str, coef: &Tensor, bias: &Tensor, x: &str) -> Result<String> {
    let four = g.scalar("subsample.four", 4.0);
    let coef = g.weight(&format!("{name}.coef"), &coef.view([1, -1, 1, 1]))?;
    let bias = g.weight(&format!("{name}.bias"), &bias.view([1, -1, 1, 1]))?;
    let x = pool(g, Pooling::Avg, x);
    let x = g.op("Mul", &[&x, &four], vec![]);
    let x = g.op("Mul", &[&x, &coef], vec![]);
    let x = g.op("Add", &[&x, &bias], vec![]);
    Ok(squash(g, &x))
}

/// The 1998 net: back from normalised values to pixels, the paper's 32×32 input (background −0.1, ink
/// 1.175), C1 … F6 squashed, and the negated RBF penalties. C3's connection table is folded into its
/// weights (the mask multiplied in, as the forward pass does).
fn lenet1998(g: &mut Graph, n: &LeNet1998, x: String) -> Result<String> {
    let std = g.scalar("paper_input.std", n.normalization.std[0]);
    let mean = g.scalar("paper_input.mean", n.normalization.mean[0]);
    let (scale, shift) = (
        g.scalar("paper_input.scale", 1.275),
        g.scalar("paper_input.shift", 0.1),
    );
    let pads = g.int64s("paper_input.pads", &[0, 0, 2, 2, 0, 0, 2, 2]);
    let x = g.op("Mul", &[&x, &std], vec![]);
    let x = g.op("Add", &[&x, &mean], vec![]);
    let x = g.op("Pad", &[&x, &pads], vec![]);
    let x = g.op("Mul", &[&x, &scale], vec![]);
    let x = g.op("Sub", &[&x, &shift], vec![]);
    let x = conv(g, "c1", &n.c1, &x, 0)?;
    let x = squash(g, &x);
    let x = subsample(g, "s2", &n.s2_coef, &n.s2_bias, &x)?;
    let c3_weights = &n.c3.ws * &n.c3_mask;
    let x = conv_with(g, "c3", &c3_weights, n.c3.bs.as_ref(), &x, 0)?;
    let x = squash(g, &x);
    let x = subsample(g, "s4", &n.s4_coef, &n.s4_bias, &x)?;
    let x = conv(g, "c5", &n.c5, &x, 0)?;
    let x = g.op("Flatten", &[&x], vec![int("axis", 1)]);
    let x = squash(g, &x);
    let x = gemm(g, "f6", &n.f6, &x)?;
    let f6 = squash(g, &x);
    // y_i = Σ_j (f6_j − w_ij)², as `rbf_penalties`: [N, 1, 84] − [10, 84] → [N, 10, 84] → sum over j.
    let prototypes = g.weight("rbf.prototypes", &n.rbf)?;
    let (axis1, axis2) = (g.int64s("rbf.axis1", &[1]), g.int64s("rbf.axis2", &[2]));
    let x = g.op("Unsqueeze", &[&f6, &axis1], vec![]);
    let x = g.op("Sub", &[&x, &prototypes], vec![]);
    let x = g.op("Mul", &[&x, &x], vec![]);
    let x = g.op("ReduceSum", &[&x, &axis2], vec![int("keepdims", 0)]);
    Ok(g.op("Neg", &[&x], vec![]))
}
