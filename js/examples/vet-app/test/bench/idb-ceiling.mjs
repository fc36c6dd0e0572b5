// The ceiling of IndexedDB itself in Debian's Chromium on this machine, without smartsync:
// N rows shaped like the first-sync benchmark's (20 columns), written with put() in
// transactions of PAGE rows, the records shaped as the client stores them ("full": {id, data,
// version, status, tempRefs, updatedAt}), with and without the client's two indexes, with and
// without a promise per put, and as bare rows. Prints ms, rows/s and the CPU seconds of
// Chromium's renderer and other processes (from /proc) per variant; asserts nothing.
//   cd js/examples/vet-app && node test/bench/idb-ceiling.mjs     (N=20000 PAGE=1000 ROUNDS=2)
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';
const html = `<!doctype html><script>
function row(g){return {id:g,practice_id:1,pet_id:1,test_code:'T'+(g%500),test_name:'Blood panel '+(g%97),sample_type:'serum',collected_at:'2026-11-01T00:00:00+00:00',reported_at:'2026-11-02T00:00:00+00:00',value_num:(g%1000)/7,value_text:'within range',unit:'mmol/L',ref_low:1.5,ref_high:9.25,flag:'N',lab_name:'Central Lab',technician:'tech '+(g%13),comment:'sample '+g+' processed without remarks',is_final:g%2===0,attempts:g%3,external_ref:'EXT-000'+g,version:1,updated_at:'2026-11-02T00:00:00+00:00'};}
function open(name, indexes){return new Promise((res,rej)=>{const r=indexedDB.open(name,1);r.onupgradeneeded=()=>{const s=r.result.createObjectStore('rows',{keyPath:'id'}); if(indexes){s.createIndex('status','status');s.createIndex('tempRefs','tempRefs',{multiEntry:true});}};r.onsuccess=()=>res(r.result);r.onerror=()=>rej(r.error);});}
async function run(name, {indexes, promises, shape, n, page}){
  const db=await open(name, indexes);
  const pages=[]; for(let p=0;p<n/page;p++){const a=[];for(let i=0;i<page;i++){const g=p*page+i+1;a.push(row(g));}pages.push(JSON.parse(JSON.stringify(a)));}
  const t0=performance.now();
  for(const rows of pages){
    const tx=db.transaction(['rows'],'readwrite',{durability:'relaxed'}); const st=tx.objectStore('rows');
    const ps=[];
    for(const data of rows){
      const rec = shape==='full' ? {id:data.id,data,version:1,status:'synced',tempRefs:[],updatedAt:data.updated_at} : shape==='nostatus' ? {id:data.id,data,version:1,updatedAt:data.updated_at} : data;
      const r=st.put(rec);
      if(promises) ps.push(new Promise((res,rej)=>{const ok=()=>{r.removeEventListener('success',ok);r.removeEventListener('error',ko);res(r.result)};const ko=()=>{r.removeEventListener('success',ok);r.removeEventListener('error',ko);rej(r.error)};r.addEventListener('success',ok);r.addEventListener('error',ko);}));
    }
    await Promise.all(ps);
    await new Promise((res,rej)=>{tx.oncomplete=res;tx.onerror=()=>rej(tx.error);tx.onabort=()=>rej(tx.error);});
  }
  const ms=performance.now()-t0; db.close(); return ms;
}
window.run=run;
</script>`;
const server = createServer((req, res) => { res.writeHead(200, {'content-type':'text/html'}); res.end(html); });
await new Promise(r => server.listen(0, '127.0.0.1', r));
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, args: ['--headless','--no-sandbox','--disable-gpu'] });
const N = Number(process.env.N ?? 20000), PAGE = Number(process.env.PAGE ?? 1000);
import { readdirSync, readFileSync } from 'node:fs';
function cpu(){const o={renderer:0,other:0};for(const e of readdirSync('/proc')){if(!/^\d+$/.test(e))continue;let c,st;try{c=readFileSync(`/proc/${e}/cmdline`,'utf8');st=readFileSync(`/proc/${e}/stat`,'utf8');}catch{continue}if(!c.includes('chromium'))continue;const f=st.slice(st.lastIndexOf(')')+2).split(' ');const s=(+f[11]+ +f[12])/100;if(c.includes('--type=renderer'))o.renderer+=s;else o.other+=s;}return o;}
const variants = process.env.V ? JSON.parse(process.env.V) : [
  ['full+indexes+promises', {indexes:true,promises:true,shape:'full'}],
  ['full+indexes, no promises', {indexes:true,promises:false,shape:'full'}],
  ['full, no indexes, no promises', {indexes:false,promises:false,shape:'full'}],
  ['synced as stored now (no status, no tempRefs)+indexes, no promises', {indexes:true,promises:false,shape:'nostatus'}],
  ['flat row, no indexes', {indexes:false,promises:false,shape:'flat'}],
];
for (let round=0; round<Number(process.env.ROUNDS ?? 2); round++) {
  for (const [name, opts] of variants) {
    const ctx = await browser.newContext(); const page = await ctx.newPage();
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    const c0=cpu();
    const ms = await page.evaluate(([o,n,p]) => window.run('db'+Math.random(), {...o, n, page:p}), [opts, N, PAGE]);
    const c1=cpu();
    console.log(`${name}: ${ms.toFixed(0)} ms, ${(N/(ms/1000)).toFixed(0)} rows/s; cpu renderer ${(c1.renderer-c0.renderer).toFixed(2)} s, chromium other ${(c1.other-c0.other).toFixed(2)} s (incl. building the rows)`);
    await ctx.close();
  }
}
await browser.close(); server.close();
