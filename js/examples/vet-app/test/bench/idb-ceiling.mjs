// The ceiling of IndexedDB itself in Debian's Chromium on this machine, without smartsync:
// N rows shaped like the first-sync benchmark's (20 columns), parsed from pages of PAGE rows of
// JSON text and written in one relaxed readwrite transaction per page, the puts issued without
// waiting for each (only the transaction's complete). Variants: one record per row (as the
// client stored a listing before its chunks: inline key with the client's two indexes; inline
// key without indexes; out-of-line key; the row as a JSON string), and one record per chunk of
// rows (as the client stores a listing now: chunks of a page with a multiEntry index of their
// ids; without the index; chunks of 100). Prints ms, rows/s and the CPU seconds of Chromium's
// renderer and other processes (from /proc) per variant; asserts nothing.
//   cd js/examples/vet-app && node test/bench/idb-ceiling.mjs     (N=20000 PAGE=1000 ROUNDS=2; ONLY=0,5 some variants)
import { createServer } from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';
const html = `<!doctype html><script>
function row(g){return {id:g,practice_id:1,pet_id:1,test_code:'T'+(g%500),test_name:'Blood panel '+(g%97),sample_type:'serum',collected_at:'2026-11-01T00:00:00+00:00',reported_at:'2026-11-02T00:00:00+00:00',value_num:(g%1000)/7,value_text:'within range',unit:'mmol/L',ref_low:1.5,ref_high:9.25,flag:'N',lab_name:'Central Lab',technician:'tech '+(g%13),comment:'sample '+g+' processed without remarks',is_final:g%2===0,attempts:g%3,external_ref:'EXT-000'+g,version:1,updated_at:'2026-11-02T00:00:00+00:00'};}
function open(name, o){return new Promise((res,rej)=>{const r=indexedDB.open(name,1);r.onupgradeneeded=()=>{const s=r.result.createObjectStore('rows',o.inline?{keyPath:'id'}:undefined); if(o.idsIndex){s.createIndex('ids','ids',{multiEntry:true});} if(o.indexes){s.createIndex('status','status');s.createIndex('tempRefs','tempRefs',{multiEntry:true});}};r.onsuccess=()=>res(r.result);r.onerror=()=>rej(r.error);});}
async function run(name, o){
  const db=await open(name, o);
  const pages=[]; for(let p=0;p<o.n/o.page;p++){const a=[];for(let i=0;i<o.page;i++){const g=p*o.page+i+1;a.push(row(g));}pages.push(JSON.stringify({changes:a.map(d=>({entityType:'x',operation:'create',id:d.id,data:d,version:1,updatedAt:d.updated_at}))}));}
  const t0=performance.now(); let js=0;
  for(const text of pages){
    const j0=performance.now();
    const changes=JSON.parse(text).changes;
    const tx=db.transaction(['rows'],'readwrite',{durability:'relaxed'}); const st=tx.objectStore('rows');
    if(o.chunk){ for(let i=0;i<changes.length;i+=o.chunk){ const c=changes.slice(i,i+o.chunk).map(ch=>({id:ch.id,data:ch.data,version:ch.version,updatedAt:ch.updatedAt})); st.put({ids:c.map(r=>r.id),rows:c}, c[0].id);} }
    else for(const ch of changes){
      let rec = {id:ch.id,data:ch.data,version:ch.version,updatedAt:ch.updatedAt};
      if(o.json) rec=JSON.stringify(rec);
      if(o.inline) st.put(rec); else st.put(rec, ch.id);
    }
    js+=performance.now()-j0;
    await new Promise((res,rej)=>{tx.oncomplete=res;tx.onerror=()=>rej(tx.error);tx.onabort=()=>rej(tx.error);});
  }
  const ms=performance.now()-t0;
  db.close(); return {ms, js};
}
window.run=run;
</script>`;
const server = createServer((req, res) => { res.writeHead(200, {'content-type':'text/html'}); res.end(html); });
await new Promise(r => server.listen(0, '127.0.0.1', r));
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, args: ['--headless','--no-sandbox','--disable-gpu'] });
const N = Number(process.env.N ?? 20000), PAGE = Number(process.env.PAGE ?? 1000);
function cpu(){const o={renderer:0,other:0};for(const e of readdirSync('/proc')){if(!/^\d+$/.test(e))continue;let c,st;try{c=readFileSync(`/proc/${e}/cmdline`,'utf8');st=readFileSync(`/proc/${e}/stat`,'utf8');}catch{continue}if(!c.includes('chromium'))continue;const f=st.slice(st.lastIndexOf(')')+2).split(' ');const s=(+f[11]+ +f[12])/100;if(c.includes('--type=renderer'))o.renderer+=s;else o.other+=s;}return o;}
const variants = [
  ['a record per row: inline key + the two indexes (the client before its chunks)', {inline:true,indexes:true}],
  ['a record per row: inline key, no index', {inline:true}],
  ['a record per row: out-of-line key, no index', {}],
  ['a record per row: out-of-line key, no index, as a JSON string', {json:true}],
  ['a record per page: chunk + ids multiEntry index (the client now)', {idsIndex:true,chunk:PAGE}],
  ['a record per page: chunk, no index', {chunk:PAGE}],
  ['a record per 100 rows: chunk + ids multiEntry index', {idsIndex:true,chunk:100}],
];
const pick = process.env.ONLY ? process.env.ONLY.split(',').map(Number) : variants.map((_, i) => i);
console.log(`N=${N} PAGE=${PAGE}, Chromium ${browser.version()}, load average ${readFileSync('/proc/loadavg','utf8').split(' ').slice(0,3).join(' ')}`);
for (let round=0; round<Number(process.env.ROUNDS ?? 2); round++) {
  for (const i of pick) {
    const [name, opts] = variants[i];
    const ctx = await browser.newContext(); const page = await ctx.newPage();
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    const c0=cpu();
    const r = await page.evaluate(([o,n,p]) => window.run('db'+Math.random(), {...o, n, page:p}), [opts, N, PAGE]);
    const c1=cpu();
    console.log(`${i} ${name}: ${r.ms.toFixed(0)} ms (parse and issue ${r.js.toFixed(0)} ms), ${(N/(r.ms/1000)).toFixed(0)} rows/s; cpu renderer ${(c1.renderer-c0.renderer).toFixed(2)} s, chromium other ${(c1.other-c0.other).toFixed(2)} s (incl. building the pages)`);
    await ctx.close();
  }
}
console.log(`load average ${readFileSync('/proc/loadavg','utf8').split(' ').slice(0,3).join(' ')}`);
await browser.close(); server.close();
