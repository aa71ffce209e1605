/**
 * @module
 * The storefront's one stylesheet, served by the function itself (nothing is fetched from another
 * origin). Plain and readable: system fonts, one accent colour, text contrast of at least 4.5:1
 * (WCAG AA), a visible focus ring on everything that takes focus, and a layout that narrows to a
 * phone's width. No inline styles anywhere: the Content-Security-Policy allows none.
 */
/** The stylesheet's text; assets.ts serves it, minus its line breaks, at a URL with its hash. */
export const stylesheet = `
*,*::before,*::after{box-sizing:border-box}
[hidden]{display:none!important}
:root{--ink:#1c1917;--muted:#57534e;--line:#e7e5e4;--paper:#fafaf9;--card:#fff;--accent:#9a3412;--accent-ink:#fff;--accent-soft:#fff7ed;--ok:#166534;--ok-soft:#dcfce7;--warn:#854d0e;--warn-soft:#fef9c3;--bad:#991b1b;--bad-soft:#fee2e2;--info:#1e40af;--info-soft:#dbeafe;--radius:10px;--focus:#1d4ed8}
html{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;font-size:100%;line-height:1.5;color:var(--ink);background:var(--paper);-webkit-text-size-adjust:100%}
body{margin:0;min-height:100vh;display:flex;flex-direction:column}
main{flex:1;padding-top:1.5rem;padding-bottom:3rem}
main:focus{outline:none}
.wrap{width:100%;max-width:68rem;margin:0 auto;padding-left:1rem;padding-right:1rem}
h1,h2,h3{line-height:1.2;margin:0 0 .75rem}
h1{font-size:1.85rem}h2{font-size:1.3rem;margin-top:2rem}h3{font-size:1.05rem}
p{margin:0 0 1rem}
a{color:var(--accent);text-underline-offset:2px}
a:hover{text-decoration-thickness:2px}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px;border-radius:4px}
.skip{position:absolute;left:-999px;top:.5rem;background:var(--card);padding:.5rem 1rem;z-index:9}
.skip:focus{left:1rem}
header.site{background:#292524;color:#fafaf9}
header.site .bar{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1.5rem;min-height:3.75rem}
header.site a{color:#fafaf9;text-decoration:none}
header.site a:hover,header.site a[aria-current=page]{text-decoration:underline;text-underline-offset:6px}
header.site :focus-visible{outline-color:#93c5fd}
.brand{font-weight:800;font-size:1.2rem;letter-spacing:.02em}
.brand span{color:#fdba74}
nav ul{list-style:none;display:flex;flex-wrap:wrap;gap:.25rem 1.25rem;margin:0;padding:0}
header.site nav{flex:1}
.account{display:flex;align-items:center;gap:.75rem;font-size:.95rem}
.account form{margin:0}
.account .who{color:#d6d3d1}
.badge-count{display:inline-block;min-width:1.4rem;padding:0 .35rem;margin-left:.3rem;border-radius:999px;background:#fdba74;color:#1c1917;font-size:.8rem;font-weight:700;text-align:center}
footer.site{border-top:1px solid var(--line);color:var(--muted);font-size:.9rem;padding:1.25rem 0}
button,.button{display:inline-flex;align-items:center;justify-content:center;gap:.4rem;font:inherit;font-weight:600;padding:.55rem 1.05rem;border-radius:8px;border:1px solid var(--accent);background:var(--accent);color:var(--accent-ink);cursor:pointer;text-decoration:none;line-height:1.3}
button:hover,.button:hover{filter:brightness(1.12)}
button.secondary,.button.secondary{background:var(--card);color:var(--accent)}
button.danger{background:var(--card);color:var(--bad);border-color:var(--bad)}
button.link{background:none;border:none;color:inherit;padding:0;font-weight:inherit;text-decoration:underline;text-underline-offset:4px}
button:disabled{background:#e7e5e4;border-color:#d6d3d1;color:#57534e;cursor:not-allowed;filter:none}
button.big{font-size:1.1rem;padding:.75rem 1.5rem}
label{display:block;font-weight:600;margin-bottom:.3rem}
input,select,textarea{font:inherit;color:inherit;width:100%;padding:.55rem .7rem;border:1px solid #a8a29e;border-radius:8px;background:var(--card)}
textarea{min-height:7rem;resize:vertical}
input[aria-invalid=true],textarea[aria-invalid=true]{border-color:var(--bad);box-shadow:0 0 0 1px var(--bad)}
.field{margin-bottom:1rem}
.hint{color:var(--muted);font-size:.9rem;margin:.25rem 0 0}
.error{color:var(--bad);font-weight:600;font-size:.95rem;margin:.3rem 0 0}
.form{max-width:28rem;background:var(--card);border:1px solid var(--line);border-radius:var(--radius);padding:1.5rem}
.form.wide{max-width:40rem}
.form+.hint{margin-top:.75rem}
.alert{border-radius:8px;padding:.75rem 1rem;margin:0 0 1.25rem;border:1px solid}
.alert-error{background:var(--bad-soft);border-color:#fca5a5;color:var(--bad)}
.alert-success{background:var(--ok-soft);border-color:#86efac;color:var(--ok)}
.search{display:flex;gap:.5rem;max-width:32rem;margin-bottom:1.5rem}
.search label{position:absolute;left:-999px}
.grid{list-style:none;margin:0;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(14rem,1fr));gap:1rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:var(--radius);padding:1rem;display:flex;flex-direction:column;gap:.4rem;height:100%}
.card h2{font-size:1.05rem;margin:0}
.card a{color:var(--ink);text-decoration:none}
.card a:hover{text-decoration:underline}
.card .desc{color:var(--muted);font-size:.92rem;margin:0;flex:1}
.tile{display:flex;align-items:center;justify-content:center;aspect-ratio:16/10;border-radius:8px;font-size:2.2rem;font-weight:800;color:#fff;margin-bottom:.4rem}
.tile.big{font-size:4rem;aspect-ratio:1}
.t0{background:#9a3412}.t1{background:#3f6212}.t2{background:#1e3a8a}.t3{background:#6b21a8}.t4{background:#155e75}.t5{background:#78350f}
.price{font-weight:700;font-size:1.05rem}
.stock{font-size:.9rem;font-weight:600}
.stock-ok{color:var(--ok)}.stock-low{color:var(--warn)}.stock-out{color:var(--bad)}
.row{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;gap:.75rem}
.product{display:grid;grid-template-columns:minmax(0,22rem) minmax(0,1fr);gap:2.5rem;align-items:start}
.buy{display:flex;align-items:flex-end;gap:.75rem;flex-wrap:wrap;margin-top:1rem}
.buy .field{margin:0;width:6.5rem}
table{width:100%;border-collapse:collapse;background:var(--card);border:1px solid var(--line);border-radius:var(--radius)}
caption{text-align:left;font-weight:700;padding:0 0 .5rem}
th,td{text-align:left;padding:.65rem .75rem;border-bottom:1px solid var(--line);vertical-align:middle}
th{font-size:.85rem;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
td.num,th.num{text-align:right;white-space:nowrap}
tfoot td{font-weight:700;border-bottom:none}
.qty{display:flex;gap:.4rem;align-items:center}
.qty input{width:5rem}
.qty label,.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.inline{display:inline;margin:0}
.note{display:block;font-size:.9rem;font-weight:600;margin-top:.2rem}
.note-bad{color:var(--bad)}.note-warn{color:var(--warn)}
.checkout{display:flex;justify-content:flex-end;align-items:center;gap:1rem;margin-top:1.25rem;flex-wrap:wrap}
.status{display:inline-block;padding:.15rem .65rem;border-radius:999px;font-weight:700;font-size:.9rem;border:1px solid transparent}
.status-pending{background:var(--warn-soft);color:var(--warn);border-color:#fde047}
.status-paid{background:var(--ok-soft);color:var(--ok);border-color:#86efac}
.status-payment_failed,.status-expired{background:var(--bad-soft);color:var(--bad);border-color:#fca5a5}
.status-cancelled{background:#f5f5f4;color:#44403c;border-color:#d6d3d1}
.summary{display:grid;grid-template-columns:max-content 1fr;gap:.35rem 1.25rem;margin:0 0 1.5rem}
.summary dt{color:var(--muted)}.summary dd{margin:0;font-weight:600}
.pager{display:flex;align-items:center;gap:1rem;margin-top:1.5rem}
.pager ul{list-style:none;display:flex;gap:.5rem;margin:0;padding:0}
.empty{background:var(--card);border:1px dashed #d6d3d1;border-radius:var(--radius);padding:2rem;text-align:center;color:var(--muted)}
.filters{display:flex;gap:.5rem;align-items:flex-end;flex-wrap:wrap;margin-bottom:1rem}
.filters .field{margin:0}
.admin-stock{display:flex;gap:.35rem;align-items:center}
.admin-stock input{width:6rem}
.actions{display:flex;gap:.5rem;align-items:center;flex-wrap:wrap}
@media (max-width:40rem){
h1{font-size:1.5rem}
.grid{grid-template-columns:1fr 1fr;gap:.6rem}
.card{padding:.6rem}
.card .desc{display:none}
.tile{font-size:1.6rem}
.tile.big{max-width:10rem;font-size:3rem}
.product{gap:1rem}
.product{grid-template-columns:1fr}
table.stack thead{display:none}
table.stack tr{display:block;border-bottom:1px solid var(--line);padding:.5rem 0}
table.stack td{display:flex;justify-content:space-between;gap:1rem;border:none;padding:.3rem .75rem}
table.stack td[data-label]::before{content:attr(data-label);color:var(--muted);font-weight:600}
table.stack tfoot tr{display:flex;justify-content:space-between}
}
`
