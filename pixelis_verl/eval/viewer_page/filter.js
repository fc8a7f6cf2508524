const active = {};
const sections = Array.from(document.querySelectorAll('section.trajectory'));
const buttons = Array.from(document.querySelectorAll('button.filter'));
function apply() {
  let shown = 0;
  for (const s of sections) {
    const keep = Object.entries(active).every(([k, v]) => s.getAttribute('data-' + k) === v);
    s.hidden = !keep;
    shown += keep ? 1 : 0;
  }
  for (const b of buttons) b.classList.toggle('on', active[b.dataset.key] === b.dataset.value);
  document.getElementById('shown').textContent = 'showing ' + shown + ' of ' + sections.length;
}
for (const b of buttons) b.addEventListener('click', () => {
  if (active[b.dataset.key] === b.dataset.value) delete active[b.dataset.key];
  else active[b.dataset.key] = b.dataset.value;
  apply();
});
document.getElementById('clear').addEventListener('click', () => {
  for (const k of Object.keys(active)) delete active[k];
  apply();
});
apply();
