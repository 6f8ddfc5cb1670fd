/**
 * A run's calls as a tree from its root, the call shown marked.
 * @module
 */
import type { TreeNode } from '../../api-types.js';
import { Badge } from '../components/badge.js';
import { runHref } from '../state/route.js';

function TreeItem({ node: n, selected }: { node: TreeNode; selected: string }) {
  return (
    <li data-call={n.id}>
      <div class={`node${n.id === selected ? ' sel' : ''}`}>
        <a class="fn" href={runHref(n.id)}>
          {n.function}
        </a>
        <Badge text={n.state} />
        <span class="meta">{`${n.attempts} ${n.attempts === 1 ? 'attempt' : 'attempts'}${n.resumes ? ` · ${n.resumes} ${n.resumes === 1 ? 'resume' : 'resumes'}` : ''}`}</span>
      </div>
      {n.children.length > 0 ? (
        <ul>
          {n.children.map((child) => (
            <TreeItem key={child.id} node={child} selected={selected} />
          ))}
        </ul>
      ) : null}
    </li>
  );
}

/**
 * The tree, or a note when the run is gone.
 * @example
 * <CallTree root={data.tree} selected={data.call.id} />
 */
export function CallTree({ root, selected }: { root: TreeNode | null; selected: string }) {
  if (!root) return <p class="muted">The run is gone.</p>;
  return (
    <ul class="tree">
      <TreeItem node={root} selected={selected} />
    </ul>
  );
}
