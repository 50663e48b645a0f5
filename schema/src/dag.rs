//! The execution graph of a plan. Nodes are chunks and per-export finalize steps; a
//! finalize step waits for its export's chunks, and every chunk of wave N waits for the
//! finalize steps of wave N-1. The planner builds it to check the plan is acyclic; the
//! executor builds the same graph from the sealed body to decide what may run.

use petgraph::algo::toposort;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::plan::PlanBody;

/// A node of the execution graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DagNode {
    /// Read, encode, write and record one chunk.
    Chunk { export: String, chunk_id: String },
    /// Write the export's manifest and `_SUCCESS`.
    Finalize { export: String },
}

/// The plan's DAG with its nodes in one valid execution order.
pub struct PlanGraph {
    pub graph: DiGraph<DagNode, ()>,
    pub order: Vec<NodeIndex>,
}

impl PlanGraph {
    /// Builds the graph for a plan body; fails only if the body is inconsistent
    /// (an export named in a wave that does not exist, or a cycle).
    pub fn build(body: &PlanBody) -> Result<Self, String> {
        let mut graph = DiGraph::new();
        let mut previous_finals: Vec<NodeIndex> = Vec::new();
        for wave in &body.waves {
            let mut finals = Vec::new();
            for name in &wave.exports {
                let export = body
                    .export(name)
                    .ok_or_else(|| format!("wave {} names unknown export `{name}`", wave.wave))?;
                let fin = graph.add_node(DagNode::Finalize {
                    export: name.clone(),
                });
                for chunk in &export.chunks {
                    let node = graph.add_node(DagNode::Chunk {
                        export: name.clone(),
                        chunk_id: chunk.id.clone(),
                    });
                    for &p in &previous_finals {
                        graph.add_edge(p, node, ());
                    }
                    graph.add_edge(node, fin, ());
                }
                if export.chunks.is_empty() {
                    for &p in &previous_finals {
                        graph.add_edge(p, fin, ());
                    }
                }
                finals.push(fin);
            }
            previous_finals = finals;
        }
        let order =
            toposort(&graph, None).map_err(|_| "the plan's graph has a cycle".to_owned())?;
        Ok(PlanGraph { graph, order })
    }

    /// Number of edges (shown by `plan show`).
    pub fn edge_count(&self) -> usize {
        self.graph.edge_count()
    }
}
